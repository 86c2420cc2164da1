// Exit codes as Sentinel reads them (sentinel.c sentinelCollectTerminatedScripts): 0 done,
// 1 retry later with the SAME arguments, >=2 dropped for good and `-script-error` published.
// reconcile and notification use the same three so every program means the same thing by them.
export const EXIT = {
  OK: 0,
  /** Consul, the Sentinels or the lock were not available in time: run again (Sentinel does, with stale args). */
  TRANSIENT: 1,
  /** Bad arguments or configuration: running again cannot help. */
  PERMANENT: 2,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_NAMES: Record<ExitCode, string> = {
  0: 'ok',
  1: 'transient',
  2: 'permanent',
};
