// The command-line programs' logs: JSON lines on stderr (where the journal, Consul and Sentinel
// collect a program's output), secrets redacted as in st-api's logs, and text from outside escaped
// so that it cannot forge a line.
import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { SECRET_REDACTION } from '../log-redaction.ts';
import { printableJson, printableJsonLines } from '../printable.ts';
import { errorOfKind } from './errors.ts';

export class LogLevelError extends errorOfKind('LogLevelError', 'config') {}

/** At `info` until setLogLevel: a bad level is reported through this logger, so it exists first. */
export function createProgramLogger(options: { program: string; command: string; stderr: Writable }): Logger {
  return pino(
    { base: { program: options.program, command: options.command }, level: 'info', redact: SECRET_REDACTION },
    printableJsonLines(options.stderr),
  );
}

/** The level `env[variable]` names, if set; any other word is a configuration error naming the variable. */
export function setLogLevel(logger: Logger, env: NodeJS.ProcessEnv, variable: string): void {
  const level = env[variable];
  if (level === undefined) return;
  const levels = [...Object.keys(logger.levels.values), 'silent'];
  if (!levels.includes(level))
    throw new LogLevelError(`${variable} must be one of ${levels.join(', ')}; got ${printableJson(level.slice(0, 40))}`);
  logger.level = level;
}
