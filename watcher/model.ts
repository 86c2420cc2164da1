// The values every part of the watcher shares: what Consul says about an instance, and the
// Route53 records st-api owns. Plain data, so the plan can be a pure function of them.

export type Health = 'passing' | 'warning' | 'critical' | 'maintenance';

/** One st-api instance as Consul sees it. */
export interface Instance {
  node: string;
  serviceId: string;
  ipv4: string | undefined;
  ipv6: string | undefined;
  /** Aggregate of the instance's and its node's checks: maintenance > critical > warning > passing. */
  health: Health;
  /** The checks that are not passing, with their output: why a node is out, for `status`. */
  failingChecks?: readonly FailingCheck[];
}

export interface FailingCheck {
  name: string;
  status: string;
  output: string;
}

export type RecordType = 'A' | 'AAAA';

/** A multivalue answer record: one per node and address family, all under one name. */
export interface DnsRecord {
  /** Fully qualified, lowercase, with the trailing dot, as Route53 returns it. */
  name: string;
  type: RecordType;
  setIdentifier: string;
  ttl: number;
  /** Ours always hold one value; a hand-edited record may hold more, and DELETE must repeat them all. */
  values: string[];
}

export function recordKey(record: Pick<DnsRecord, 'type' | 'setIdentifier'>): string {
  return `${record.type} ${record.setIdentifier}`;
}

export function fqdn(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}
