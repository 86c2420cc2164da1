// The plan: current records + Consul's instances + the exclusion list → the changes to make.
// A pure function, so every rule below is one case with one named-fixture test (plan.test.ts).
//
// | instance                              | record now    | change                                   |
// |---------------------------------------|---------------|------------------------------------------|
// | eligible (healthy, not excluded)      | absent        | CREATE                                   |
// | eligible                              | same value    | nothing                                  |
// | eligible                              | other value/TTL | UPSERT                                 |
// | not eligible, or gone from Consul     | present       | DELETE (exact current values)            |
// | …but fewer eligible than the floor    | present       | kept, most credible first (floor)        |
// | …but more deletes than the cap        | present       | kept until a later run (deferred)        |
// Records the watcher does not own never enter the plan (the provider filters them out). Registrations
// Route53 would refuse or that must never be published are left out first (publishable.ts).
import { fqdn, recordKey, type DnsRecord, type Health, type Instance, type RecordType } from '../model.ts';
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

export function computePlan({ current, instances: registered, excluded, policy }: PlanInput): Plan {
  const name = fqdn(policy.recordName);
  const { instances, skipped } = publishable(registered, policy);
  const eligibleInstances = instances.filter((instance) => isEligible(instance, excluded, policy.warningIsHealthy));
  const desired = new Map<string, DnsRecord>();
  for (const instance of eligibleInstances) {
    for (const record of recordsFor(instance, name, policy)) desired.set(recordKey(record), record);
  }

  const eligibleNodes = new Set(eligibleInstances.map((instance) => instance.node));
  const floorEngaged = eligibleNodes.size < policy.minHealthy;
  const keptByFloor: string[] = [];
  if (floorEngaged) {
    // Keep the most credible of the records already published, never an excluded node's.
    const healthByNode = new Map(instances.map((instance) => [instance.node, instance.health]));
    const candidates = [...new Set(current.map((record) => nodeOf(policy.ownerId, record)))]
      .filter((node) => !eligibleNodes.has(node) && !excluded.has(node))
      .sort((a, b) => credibility(healthByNode.get(a)) - credibility(healthByNode.get(b)) || a.localeCompare(b));
    for (const node of candidates.slice(0, policy.minHealthy - eligibleNodes.size)) {
      keptByFloor.push(node);
      for (const record of current) if (nodeOf(policy.ownerId, record) === node) desired.set(recordKey(record), record);
    }
  }

  const currentByKey = new Map(current.map((record) => [recordKey(record), record]));
  const creates: DnsRecord[] = [];
  const upserts: DnsRecord[] = [];
  for (const [key, record] of desired) {
    const existing = currentByKey.get(key);
    if (existing === undefined) creates.push(record);
    else if (existing.ttl !== record.ttl || !sameValues(existing.values, record.values)) upserts.push(record);
  }
  const allDeletes = current.filter((record) => !desired.has(recordKey(record))).sort(byKey);
  const deletes = allDeletes.slice(0, Math.max(0, policy.maxDeletesPerRun));
  const deferredDeletes = allDeletes.slice(deletes.length);

  const publishedAfter = new Set([...desired.values(), ...deferredDeletes].map((record) => nodeOf(policy.ownerId, record)));
  return {
    creates: creates.sort(byKey),
    upserts: upserts.sort(byKey),
    deletes,
    deferredDeletes,
    published: [...publishedAfter].sort(),
    eligible: [...eligibleNodes].sort(),
    floorEngaged,
    keptByFloor: keptByFloor.sort(),
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

/** Lower is more credible: a warning node still serves; one that left Consul is the least known. */
function credibility(health: Health | undefined): number {
  return health === undefined ? 3 : { passing: 0, warning: 1, critical: 2, maintenance: 2 }[health];
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((value, index) => value === [...b].sort()[index]);
}

function byKey(a: DnsRecord, b: DnsRecord): number {
  return recordKey(a).localeCompare(recordKey(b));
}
