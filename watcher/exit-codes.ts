// Named exit codes (sysexits.h values). Consul never retries a failed handler, so every non-zero
// code means "DNS is as it was; the next change or `reconcile` repairs" — the code says why.
import { exitNames, type ExitCodes } from '../common/cli/errors.ts';

export const EXIT = {
  OK: 0,
  /** Bad command line. */
  USAGE: 64,
  /** Input that is not what Consul sends: garbage stdin, a KV value that is not JSON. */
  BAD_INPUT: 65,
  /** Consul or Route53 could not be reached. */
  UNAVAILABLE: 69,
  /** A bug. */
  SOFTWARE: 70,
  /** Tried within the retry bound and still could not finish: throttled, lock busy or lost, batches rejected. */
  TRANSIENT: 75,
  /** Refused for safety, nothing changed: `exclude` would take DNS below the floor (--force overrides). */
  REFUSED: 77,
  /** The configuration, the zone or the IAM permissions are wrong. */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_NAMES = exitNames(EXIT);

/** How a failed run exits: by the kind its error carries; anything untranslated is a bug. */
export const EXIT_BY_KIND: ExitCodes<ExitCode> = {
  usage: EXIT.USAGE,
  'bad-input': EXIT.BAD_INPUT,
  unavailable: EXIT.UNAVAILABLE,
  transient: EXIT.TRANSIENT,
  refused: EXIT.REFUSED,
  config: EXIT.CONFIG,
  bug: EXIT.SOFTWARE,
};
