// What converge needs from a DNS provider: the records the watcher owns, and a way to change them.
// Route53Provider is the real one; tests use an in-memory one.
import type { DnsRecord } from '../model.ts';
import type { Change } from './batches.ts';

export interface ApplyResult {
  /** One id per accepted batch, for `reconcile --wait`. */
  changeIds: string[];
}

export interface DnsProvider {
  /** The records the watcher owns under the record name; no other record ever enters the plan. */
  listOwned(): Promise<DnsRecord[]>;
  /**
   * Applies the changes, additions first, in as few batches as the provider allows. Rejects with
   * ChangeRejectedError when a batch no longer matches the records (someone else changed them), so
   * the caller re-plans. `beforeEachBatch` may throw to stop before the next batch.
   */
  apply(changes: readonly Change[], beforeEachBatch?: () => void): Promise<ApplyResult>;
  /** API calls made so far, for the run's status. */
  readonly calls: number;
}
