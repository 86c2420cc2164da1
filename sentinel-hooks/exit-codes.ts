// Exit codes as Sentinel reads them (sentinel.c sentinelCollectTerminatedScripts): 0 done,
// 1 retry later with the SAME arguments, >=2 dropped for good and `-script-error` published.
// reconcile and notification use the same three so every program means the same thing by them.
import { exitNames, type ExitCodes } from '../common/cli/errors.ts';

export const EXIT = {
  OK: 0,
  /** Consul, the Sentinels or the lock were not available in time: run again (Sentinel does, with stale args). */
  TRANSIENT: 1,
  /** Bad arguments or configuration: running again cannot help. */
  PERMANENT: 2,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_NAMES = exitNames(EXIT);

/** How a failed run exits: by the kind its error carries. */
export const EXIT_BY_KIND: ExitCodes<ExitCode> = {
  unavailable: EXIT.TRANSIENT,
  transient: EXIT.TRANSIENT,
  usage: EXIT.PERMANENT,
  'bad-input': EXIT.PERMANENT,
  config: EXIT.PERMANENT,
  refused: EXIT.PERMANENT,
  // A bug: retrying with the same arguments would hit it again; the reconcile timer keeps DNS honest meanwhile.
  bug: EXIT.PERMANENT,
};
