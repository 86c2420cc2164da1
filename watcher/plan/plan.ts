// The plan: current records + Consul's instances + the exclusion list → the changes that make DNS
// hold exactly the eligible nodes. A pure function, so every rule below is one case with one
// named-fixture test (plan.test.ts). The floor and the deletion cap are policies applied after this
// diff (policy.ts); planWithPolicies is what a run applies.
//
// | instance                              | record now    | change                                   |
// |---------------------------------------|---------------|------------------------------------------|
// | eligible (healthy, not excluded)      | absent        | CREATE                                   |
// | eligible                              | same value    | nothing                                  |
// | eligible                              | other value/TTL | UPSERT                                 |
// | not eligible, or gone from Consul     | present       | DELETE (exact current values)            |
// Records the watcher does not own never enter the plan (the provider filters them out). Registrations
// Route53 would refuse or that must never be published are left out first (publishable.ts).
import { fqdn, recordKey, type DnsRecord, type Instance, type RecordType } from '../model.ts';
import { publishable, type PublishPolicy, type Skipped } from './publishable.ts';
import { nodeOf, setIdentifierFor } from './set-identifier.ts';

export { nodeOf, setIdentifierFor } from './set-identifier.ts';
export type { Skipped } from './publishable.ts';

export interface PlanPolicy extends PublishPolicy {
  recordName: string;
  ttl: number;
  /** Prefix of every SetIdentifier the watcher owns: `<ownerId>/<node>/<service id>`. */
  ownerId: string;
  /** Never publish fewer nodes than this while any are published. */
  minHealthy: number;
  /** Blast radius: at most this many DELETEs per run. */
  maxDeletesPerRun: number;
  warningIsHealthy: boolean;
}

export interface PlanInput {
  current: readonly DnsRecord[];
  instances: readonly Instance[];
  excluded: ReadonlySet<string>;
  policy: PlanPolicy;
}

export interface Plan {
  creates: DnsRecord[];
  upserts: DnsRecord[];
  deletes: DnsRecord[];
  /** Deletes the cap postponed; the next run takes them. */
  deferredDeletes: DnsRecord[];
  /** Nodes whose records are in DNS once the plan is applied. */
  published: string[];
  eligible: string[];
  /** Fewer eligible nodes than minHealthy: the floor applies (exclude refuses to go further). */
  belowFloor: boolean;
  /** The floor keeps nodes that are not eligible in DNS (keptByFloor is not empty); below the floor with nothing to keep is not engaged. */
  floorEngaged: boolean;
  /** Nodes kept in DNS only because of the floor. */
  keptByFloor: string[];
  /** Registrations (or one of their addresses) left out because Route53 would refuse them or they must never be published. */
  skipped: Skipped[];
}

export function isEligible(instance: Instance, excluded: ReadonlySet<string>, warningIsHealthy: boolean): boolean {
  if (excluded.has(instance.node)) return false;
  return instance.health === 'passing' || (instance.health === 'warning' && warningIsHealthy);
}

/** The diff alone: no floor, no cap (policy.ts applies them to this plan). */
export function computePlan({ current, instances: registered, excluded, policy }: PlanInput): Plan {
  const name = fqdn(policy.recordName);
  const { instances, skipped } = publishable(registered, policy);
  const eligibleInstances = instances.filter((instance) => isEligible(instance, excluded, policy.warningIsHealthy));
  const desired = new Map<string, DnsRecord>();
  for (const instance of eligibleInstances) {
    for (const record of recordsFor(instance, name, policy)) desired.set(recordKey(record), record);
  }

  const currentByKey = new Map(current.map((record) => [recordKey(record), record]));
  const creates: DnsRecord[] = [];
  const upserts: DnsRecord[] = [];
  for (const [key, record] of desired) {
    const existing = currentByKey.get(key);
    if (existing === undefined) creates.push(record);
    else if (existing.ttl !== record.ttl || !sameValues(existing.values, record.values)) upserts.push(record);
  }
  return {
    creates: creates.sort(byKey),
    upserts: upserts.sort(byKey),
    deletes: current.filter((record) => !desired.has(recordKey(record))).sort(byKey),
    deferredDeletes: [],
    published: nodesOf(policy.ownerId, desired.values()),
    eligible: [...new Set(eligibleInstances.map((instance) => instance.node))].sort(),
    belowFloor: false,
    floorEngaged: false,
    keptByFloor: [],
    skipped,
  };
}

export function hasChanges(plan: Plan): boolean {
  return plan.creates.length + plan.upserts.length + plan.deletes.length > 0;
}

function recordsFor(instance: Instance, name: string, policy: PlanPolicy): DnsRecord[] {
  const setIdentifier = setIdentifierFor(policy.ownerId, instance);
  const records: DnsRecord[] = [];
  const add = (type: RecordType, value: string | undefined) => {
    if (value !== undefined) records.push({ name, type, setIdentifier, ttl: policy.ttl, values: [value] });
  };
  add('A', instance.ipv4);
  add('AAAA', instance.ipv6);
  return records;
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((value, index) => value === [...b].sort()[index]);
}

/** The nodes the records belong to, sorted, each once. */
export function nodesOf(ownerId: string, records: Iterable<DnsRecord>): string[] {
  return [...new Set([...records].map((record) => nodeOf(ownerId, record)))].sort();
}

function byKey(a: DnsRecord, b: DnsRecord): number {
  return recordKey(a).localeCompare(recordKey(b));
}
