// How a run of a command-line program failed, in words its callers act on (consul-template's
// errors that carry their exit status; external-dns's soft errors). Adapters translate their
// libraries' failures into a ProgramError at the boundary, each program maps a kind to its own exit
// code in one table, and whatever arrives untranslated is a bug.

/**
 * usage: the command line; bad-input: input that is not what the caller sends (stdin, Sentinel's
 * arguments, a stored value); config: configuration, credentials or permissions, which only a human
 * fixes; unavailable: a dependency could not be reached; transient: tried within its bounds and could
 * not finish, the next run repairs; refused: refused for safety, nothing changed.
 */
export type ErrorKind = 'usage' | 'bad-input' | 'config' | 'unavailable' | 'transient' | 'refused';

/** A failure of a known kind: each subclass names itself (`name`, what the log shows) and says its `kind`. */
export abstract class ProgramError extends Error {
  abstract readonly kind: ErrorKind;
}

/**
 * The base of a program's own error of one kind, named as the log shows it:
 * `export class LockBusyError extends errorOfKind('LockBusyError', 'transient') {}`.
 */
export function errorOfKind(name: string, kind: ErrorKind) {
  return class extends ProgramError {
    override name = name;
    readonly kind = kind;
  };
}

export class UsageError extends errorOfKind('UsageError', 'usage') {}

/** A program's exit code for each kind, and for anything else: a bug. */
export type ExitCodes<Code extends number> = Readonly<Record<ErrorKind | 'bug', Code>>;

/** Each exit code's name, for logs and statuses: its key in the program's EXIT table, lower case (BAD_INPUT → bad-input). */
export function exitNames<Code extends number>(exit: Readonly<Record<string, Code>>): Readonly<Record<Code, string>> {
  return Object.fromEntries(Object.entries(exit).map(([key, code]) => [code, key.toLowerCase().replaceAll('_', '-')])) as Record<
    Code,
    string
  >;
}

export function exitCodeOf<Code extends number>(error: unknown, codes: ExitCodes<Code>): Code {
  return error instanceof ProgramError ? codes[error.kind] : codes.bug;
}

/**
 * A library's failure as a ProgramError of `kind`, keeping its name and message (what operators
 * search logs and runbooks for: `Throttling`, `ECONNREFUSED`) and the original as its cause.
 */
export function translated(kind: ErrorKind, error: unknown): ProgramError {
  return new TranslatedError(kind, error);
}

class TranslatedError extends ProgramError {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, error: unknown) {
    super(error instanceof Error ? error.message : String(error), { cause: error });
    this.kind = kind;
    if (error instanceof Error) this.name = error.name;
  }
}

const CONNECTION_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** A socket error that means "no answer from that address": refused, reset, unreachable, not resolved. */
export function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_FAILURES.has(code);
}
