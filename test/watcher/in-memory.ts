// In-memory source, registry and DNS provider behind converge's interfaces, for unit tests that need
// no Consul or Route53 double: each keeps its state in plain fields a test sets and reads.
import type { DnsRecord } from '../../watcher/model.ts';
import { recordKey } from '../../watcher/model.ts';
import { toBatches, type Change } from '../../watcher/provider/batches.ts';
import type { ApplyResult, DnsProvider } from '../../watcher/provider/provider.ts';
import { ChangeRejectedError } from '../../watcher/provider/route53.ts';
import type { Registry } from '../../watcher/registry/registry.ts';
import type { HealthSource, Snapshot } from '../../watcher/source/source.ts';
import { LockLostError, LockTimeoutError, type Exclusion, type HeldLock, type RunStatus } from '../../watcher/state/consul-state.ts';

/** Answers with `snapshot`, which a test may replace at any time (Consul moving on); `fail` makes reads reject. */
export class InMemorySource implements HealthSource {
  snapshot: Snapshot;
  fail: Error | undefined;
  reads = 0;

  constructor(snapshot: Snapshot) {
    this.snapshot = snapshot;
  }

  read(): Promise<Snapshot> {
    this.reads += 1;
    if (this.fail !== undefined) return Promise.reject(this.fail);
    return Promise.resolve(structuredClone(this.snapshot));
  }
}

/** One process's view of the lock: `heldBy` another holder makes withLock time out; `loseLock()` makes assertHeld throw. */
export class InMemoryRegistry implements Registry {
  exclusionList: Exclusion[] = [];
  status: RunStatus | undefined;
  statusWrites = 0;
  heldBy: string | undefined;
  #lost = false;

  withLock<T>(holder: string, waitMs: number, work: (lock: HeldLock) => Promise<T>): Promise<T> {
    if (this.heldBy !== undefined) return Promise.reject(new LockTimeoutError(`another watcher held the lock for more than ${waitMs} ms`));
    this.heldBy = holder;
    const lock: HeldLock = {
      assertHeld: () => {
        if (this.#lost) throw new LockLostError('the lock was lost: stopping before another write');
      },
    };
    return work(lock).finally(() => {
      this.heldBy = undefined;
    });
  }

  loseLock(): void {
    this.#lost = true;
  }

  exclusions(): Promise<Exclusion[]> {
    return Promise.resolve(structuredClone(this.exclusionList));
  }

  readStatus(): Promise<RunStatus | undefined> {
    return Promise.resolve(structuredClone(this.status));
  }

  writeStatus(status: RunStatus): Promise<void> {
    this.statusWrites += 1;
    this.status = structuredClone(status);
    return Promise.resolve();
  }
}

/** Owned records by key, changed batch by batch and all-or-nothing per batch, as Route53 does. */
export class InMemoryDns implements DnsProvider {
  readonly records = new Map<string, DnsRecord>();
  calls = 0;
  /** Batches still to refuse as if the records had changed under the run (Route53's InvalidChangeBatch). */
  rejectBatches = 0;
  /** Called after each accepted batch, e.g. for Consul to move on mid-run. */
  afterBatch: () => void = () => undefined;

  constructor(records: readonly DnsRecord[] = []) {
    for (const record of records) this.records.set(recordKey(record), record);
  }

  listOwned(): Promise<DnsRecord[]> {
    this.calls += 1;
    return Promise.resolve(structuredClone([...this.records.values()]));
  }

  apply(changes: readonly Change[], beforeEachBatch: () => void = () => undefined): Promise<ApplyResult> {
    const changeIds: string[] = [];
    try {
      for (const batch of toBatches(changes)) {
        beforeEachBatch();
        this.calls += 1;
        const problem = this.#problem(batch);
        if (problem !== undefined) throw new ChangeRejectedError(problem);
        for (const { action, record } of batch) {
          if (action === 'DELETE') this.records.delete(recordKey(record));
          else this.records.set(recordKey(record), structuredClone(record));
        }
        changeIds.push(`C${this.calls}`);
        this.afterBatch();
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return Promise.resolve({ changeIds });
  }

  /** The nodes' record keys in DNS, sorted. */
  keys(): string[] {
    return [...this.records.keys()].sort();
  }

  #problem(batch: readonly Change[]): string | undefined {
    if (this.rejectBatches > 0) {
      this.rejectBatches -= 1;
      return 'records changed under the run';
    }
    for (const { action, record } of batch) {
      const existing = this.records.get(recordKey(record));
      if (action === 'CREATE' && existing !== undefined) return `${recordKey(record)} already exists`;
      if (action === 'DELETE' && JSON.stringify(existing) !== JSON.stringify(record))
        return `${recordKey(record)} is not there with these values`;
    }
    return undefined;
  }
}
