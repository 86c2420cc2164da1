// Packs changes into as few ChangeResourceRecordSets requests as Route53's limits allow:
// ≤1000 ResourceRecord values and ≤32,000 characters of values per request, UPSERT counted twice.
import type { DnsRecord } from '../model.ts';

export type Action = 'CREATE' | 'UPSERT' | 'DELETE';
export interface Change {
  action: Action;
  record: DnsRecord;
}

export const BATCH_LIMITS = { records: 1000, characters: 32_000 } as const;

export function changeCost(change: Change): { records: number; characters: number } {
  const factor = change.action === 'UPSERT' ? 2 : 1;
  return {
    records: change.record.values.length * factor,
    characters: change.record.values.reduce((sum, value) => sum + value.length, 0) * factor,
  };
}

/**
 * Additions go first, so when a run needs several requests DNS grows before it shrinks and never
 * dips below what the plan keeps.
 */
export function toBatches(changes: readonly Change[], limits: { records: number; characters: number } = BATCH_LIMITS): Change[][] {
  const order: Record<Action, number> = { CREATE: 0, UPSERT: 1, DELETE: 2 };
  const sorted = [...changes].sort((a, b) => order[a.action] - order[b.action]);
  const batches: Change[][] = [];
  let current: Change[] = [];
  let records = 0;
  let characters = 0;
  for (const change of sorted) {
    const cost = changeCost(change);
    if (current.length > 0 && (records + cost.records > limits.records || characters + cost.characters > limits.characters)) {
      batches.push(current);
      current = [];
      records = 0;
      characters = 0;
    }
    current.push(change);
    records += cost.records;
    characters += cost.characters;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
