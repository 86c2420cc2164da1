// Structured JSON logs. Secrets never reach a log line: known secret-bearing fields are redacted
// here, once, instead of trusting every call site.
import { pino } from 'pino';
import { SECRET_REDACTION } from '../common/log-redaction.ts';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(options: {
  level: (typeof LOG_LEVELS)[number];
  program: string;
  destination?: pino.DestinationStream;
}): Logger {
  return pino(
    {
      level: options.level,
      base: { program: options.program },
      redact: SECRET_REDACTION,
    },
    options.destination,
  );
}
