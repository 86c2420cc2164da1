// What converge keeps beside DNS: the lock runs take turns with, the exclusion list operators edit,
// and the status of the last run. ConsulState (Consul KV and sessions) is the real one; tests use an
// in-memory one.
import type { Exclusion, HeldLock, RunStatus } from '../state/consul-state.ts';

export interface Registry {
  /**
   * Runs `work` while holding the lock, so handlers on several agents take turns. Rejects with
   * LockTimeoutError when another holder keeps it past `waitMs`; `work` calls `lock.assertHeld()`
   * before each write, which throws LockLostError once the lock may have passed to another holder.
   */
  withLock<T>(holder: string, waitMs: number, work: (lock: HeldLock) => Promise<T>): Promise<T>;
  /** Nodes kept out of DNS whatever their health. */
  exclusions(): Promise<Exclusion[]>;
  /** The last run's status, if any run recorded one. */
  readStatus(): Promise<RunStatus | undefined>;
  writeStatus(status: RunStatus): Promise<void>;
}
