// The command-line programs' logs on stderr, secrets redacted as in st-api's logs, and text from
// outside escaped so that it cannot forge a line. JSON lines where a machine reads them (the journal,
// Consul's and Sentinel's capture of a handler's output); readable lines on a terminal, where an
// on-call engineer runs a command by hand.
import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { SECRET_REDACTION } from '../log-redaction.ts';
import { printable, printableJson, printableJsonLines } from '../printable.ts';
import { errorOfKind } from './errors.ts';

export class LogLevelError extends errorOfKind('LogLevelError', 'config') {}

export type OutputFormat = 'json' | 'text';

/** Text on a terminal, JSON anywhere else: a pipe, a file, the journal. */
export function defaultFormat(stream: Writable): OutputFormat {
  return (stream as { isTTY?: boolean }).isTTY === true ? 'text' : 'json';
}

/** At `info` until setLogLevel: a bad level is reported through this logger, so it exists first. */
export function createProgramLogger(options: { program: string; command: string; stderr: Writable; format?: OutputFormat }): Logger {
  const format = options.format ?? defaultFormat(options.stderr);
  return pino(
    { base: { program: options.program, command: options.command }, level: 'info', redact: SECRET_REDACTION },
    format === 'text' ? readableLines(options.stderr) : printableJsonLines(options.stderr),
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

/** A pino destination that writes each JSON line (already redacted) as formatLogLine's text. */
function readableLines(stream: { write(text: string): unknown }): { write(line: string): void } {
  return {
    write(line: string) {
      stream.write(`${formatLogLine(line)}\n`);
    },
  };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** One run, one program, one command: the same on every line, so not repeated on a terminal. */
const OMITTED = new Set(['level', 'time', 'msg', 'program', 'command', 'pid', 'hostname', 'err']);

/**
 * One pino JSON line as a human reads it: `06:41:03 ERROR message key=value …`, local time, each value
 * escaped (printable), an error's stack (a bug's) on indented lines below.
 */
export function formatLogLine(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return printable(jsonLine.trimEnd());
  }
  const time = typeof entry.time === 'number' ? clockTime(new Date(entry.time)) : '--:--:--';
  const level = LEVEL_NAMES[Number(entry.level)] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([key, value]) => !OMITTED.has(key) && value !== undefined)
    .map(([key, value]) => `${printable(key)}=${fieldValue(value)}`);
  const head = [time, level.padEnd(5), printable(typeof entry.msg === 'string' ? entry.msg : ''), ...fields].join(' ');
  const stack = (entry.err as { stack?: unknown } | undefined)?.stack;
  if (typeof stack !== 'string') return head;
  return [head, ...stack.split('\n').map((line) => `    ${printable(line)}`)].join('\n');
}

function clockTime(date: Date): string {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Bare when it reads unambiguously (a word, a number, an address), else as JSON. */
function fieldValue(value: unknown): string {
  if (typeof value === 'string' && /^[\w.:/@+[\]-]+$/.test(value)) return value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return printableJson(value);
}
