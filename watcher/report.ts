// What `plan` and `status` print for an on-call engineer: pure functions of what the run read, so
// each wording is tested without a server. Everything from Consul, KV or Route53 (node names, check
// output, reasons) is escaped before it reaches a terminal.
import { printable } from '../common/printable.ts';
import { recordKey, type DnsRecord, type Instance } from './model.ts';
import { isEligible, nodeOf, type Plan, type Skipped } from './plan/plan.ts';
import type { Exclusion, RunStatus } from './state/consul-state.ts';

export interface ReportPolicy {
  ownerId: string;
  minHealthy: number;
  maxDeletesPerRun: number;
  warningIsHealthy: boolean;
}

/** What a run read, and the plan made from it with the policies (planWithPolicies). */
export interface ReportInput {
  plan: Plan;
  current: readonly DnsRecord[];
  instances: readonly Instance[];
  exclusions: readonly Exclusion[];
  policy: ReportPolicy;
}

export type ChangeAction = 'CREATE' | 'UPSERT' | 'DELETE' | 'DEFER' | 'KEEP';

/** One record the plan touches (or keeps only for the floor), with its node and why. */
export interface ExplainedChange {
  action: ChangeAction;
  type: DnsRecord['type'];
  node: string;
  setIdentifier: string;
  values: string[];
  reason: string;
}

/** Every record the plan creates, updates, deletes, defers or keeps for the floor, in that order, each with its reason. */
export function explainPlan({ plan, current, instances, exclusions, policy }: ReportInput): ExplainedChange[] {
  const byNode = new Map(instances.map((instance) => [instance.node, instance]));
  const excluded = new Map(exclusions.map((exclusion) => [exclusion.node, exclusion]));
  const skipped = new Map(plan.skipped.map((entry) => [entry.node, entry]));
  const currentByKey = new Map(current.map((record) => [recordKey(record), record]));
  const change = (action: ChangeAction, record: DnsRecord, reason: string): ExplainedChange => ({
    action,
    type: record.type,
    node: nodeOf(policy.ownerId, record),
    setIdentifier: record.setIdentifier,
    values: record.values,
    reason,
  });
  /** Why a node's records leave DNS (or would, but for the floor). */
  const whyOut = (node: string): string => {
    const exclusion = excluded.get(node);
    if (exclusion !== undefined) return `excluded: ${exclusion.reason}${exclusion.by === '' ? '' : ` (${exclusion.by})`}`;
    const instance = byNode.get(node);
    if (instance === undefined) return 'gone from Consul';
    if (isEligible(instance, new Set(), policy.warningIsHealthy)) {
      const left = skipped.get(node);
      return left === undefined ? 'no longer registered with this address' : `not publishable: ${left.reason}`;
    }
    const check = instance.failingChecks?.[0];
    const why = check === undefined ? '' : `: ${check.name}: ${check.output === '' ? check.status : check.output}`;
    return `${instance.health}${instance.health === 'warning' ? ' (warningIsHealthy is off)' : ''}${why}`;
  };
  const whyIn = (node: string): string => {
    const health = byNode.get(node)?.health ?? 'passing';
    return health === 'warning' ? 'warning, counted as healthy (warningIsHealthy)' : health;
  };
  const keptRecords = current.filter((record) => plan.keptByFloor.includes(nodeOf(policy.ownerId, record)));
  return [
    ...plan.creates.map((record) => change('CREATE', record, `${whyIn(nodeOf(policy.ownerId, record))}, not in DNS yet`)),
    ...plan.upserts.map((record) => {
      const now = currentByKey.get(recordKey(record));
      return change('UPSERT', record, `in DNS as ${now?.values.join(',') ?? '?'} TTL ${now?.ttl ?? '?'}`);
    }),
    ...plan.deletes.map((record) => change('DELETE', record, whyOut(nodeOf(policy.ownerId, record)))),
    ...plan.deferredDeletes.map((record) =>
      change(
        'DEFER',
        record,
        `waits for a later run (at most ${policy.maxDeletesPerRun} deletion(s) per run); ${whyOut(nodeOf(policy.ownerId, record))}`,
      ),
    ),
    ...keptRecords.map((record) =>
      change('KEEP', record, `kept by the floor (minHealthy ${policy.minHealthy}); ${whyOut(nodeOf(policy.ownerId, record))}`),
    ),
  ];
}

const SIGN: Readonly<Record<ChangeAction, string>> = { CREATE: '+', UPSERT: '~', DELETE: '-', DEFER: '.', KEEP: '=' };

/** `plan` as text: each record with its node and why, then what the skipped registrations are, then the counts. */
export function planText(input: ReportInput): string {
  const { plan, instances, policy } = input;
  const changes = explainPlan(input).map((c) => ({ ...c, node: printable(c.node), value: printable(c.values.join(',')) }));
  const nodeWidth = Math.max(4, ...changes.map((c) => c.node.length)) + 2;
  const valueWidth = Math.max(5, ...changes.map((c) => c.value.length)) + 2;
  const lines = changes.map(
    (c) =>
      `  ${SIGN[c.action]} ${c.action.padEnd(7)}${c.type.padEnd(6)}${c.node.padEnd(nodeWidth)}${c.value.padEnd(valueWidth)}${printable(c.reason)}`,
  );
  lines.push(...plan.skipped.map((s) => `  ! SKIP   ${describeSkipped(s)}`));
  const count = (n: number, what: string) => `${n} to ${what}`;
  const consulNodes = new Set(instances.map((instance) => instance.node)).size;
  const summary = [
    lines.length === 0 ? 'no changes' : '',
    `${count(plan.creates.length, 'create')}, ${count(plan.upserts.length, 'update')}, ${count(plan.deletes.length, 'delete')}` +
      `${plan.deferredDeletes.length > 0 ? `, ${plan.deferredDeletes.length} deferred` : ''}` +
      `${plan.skipped.length > 0 ? `, ${plan.skipped.length} skipped` : ''}`,
    `in DNS after apply: ${plan.published.length} node(s)${list(plan.published)}; eligible: ${plan.eligible.length} of ${consulNodes} in Consul (minHealthy ${policy.minHealthy})`,
  ];
  if (plan.floorEngaged)
    summary.push(
      `FLOOR ENGAGED: ${plan.keptByFloor.map(printable).join(', ')} kept in DNS although not eligible (minHealthy ${policy.minHealthy})`,
    );
  else if (plan.belowFloor) summary.push(`below the floor (minHealthy ${policy.minHealthy}), with no other published node to keep`);
  return `${[...lines, ...(lines.length > 0 ? [''] : []), ...summary.filter((line) => line !== '')].join('\n')}\n`;
}

function list(nodes: readonly string[]): string {
  return nodes.length === 0 ? '' : ` (${nodes.map(printable).join(', ')})`;
}

export function describeSkipped(skipped: Skipped): string {
  return printable(`${skipped.node} (${skipped.serviceId}): ${skipped.reason}`);
}

/** One node as `status` shows it. */
export interface StatusRow {
  node: string;
  addresses: string[];
  consul: Instance['health'] | 'absent';
  failingChecks: { name: string; status: string; output: string }[];
  inDns: boolean;
  keptByFloor: boolean;
  excluded: { reason: string; by: string; at: string } | null;
}

export interface StatusInput extends ReportInput {
  last: RunStatus | undefined;
  now: Date;
}

export function statusRows({ plan, current, instances, exclusions, policy }: ReportInput): StatusRow[] {
  const excluded = new Map(exclusions.map((exclusion) => [exclusion.node, exclusion]));
  const inDns = new Map<string, string[]>();
  for (const record of current) {
    const node = nodeOf(policy.ownerId, record);
    inDns.set(node, [...(inDns.get(node) ?? []), ...record.values]);
  }
  const nodes = [...new Set([...instances.map((i) => i.node), ...inDns.keys(), ...excluded.keys()])].sort();
  return nodes.map((node) => {
    const instance = instances.find((candidate) => candidate.node === node);
    const exclusion = excluded.get(node);
    const consulAddresses = [instance?.ipv4, instance?.ipv6].filter((address): address is string => address !== undefined);
    return {
      node,
      addresses: consulAddresses.length > 0 ? consulAddresses : (inDns.get(node) ?? []),
      consul: instance?.health ?? 'absent',
      failingChecks: [...(instance?.failingChecks ?? [])],
      inDns: inDns.has(node),
      keptByFloor: plan.keptByFloor.includes(node),
      excluded: exclusion === undefined ? null : { reason: exclusion.reason, by: exclusion.by, at: exclusion.at },
    };
  });
}

/** `status` as text: a row per node, the failing checks under it, the skipped registrations, and the last run and change with how long ago. */
export function statusText(input: StatusInput): string {
  const { plan, last, now, policy } = input;
  const rows = statusRows(input).map((row) => ({
    ...row,
    node: printable(row.node),
    address: printable(row.addresses.join(', ') || '-'),
    dns: row.keptByFloor ? 'yes, kept by floor' : row.inDns ? 'yes' : 'no',
    excluded:
      row.excluded === null
        ? 'no'
        : printable(
            `yes: ${row.excluded.reason} (${[row.excluded.by, row.excluded.at === '' ? '' : ago(row.excluded.at, now)].filter((part) => part !== '').join(', ')})`,
          ),
  }));
  const nodeWidth = Math.max(4, ...rows.map((row) => row.node.length)) + 2;
  const addressWidth = Math.max(7, ...rows.map((row) => row.address.length)) + 2;
  const dnsWidth = Math.max(6, ...rows.map((row) => row.dns.length)) + 2;
  const lines = [`${'node'.padEnd(nodeWidth)}${'address'.padEnd(addressWidth)}${'consul'.padEnd(13)}${'in DNS'.padEnd(dnsWidth)}excluded`];
  for (const row of rows) {
    lines.push(
      `${row.node.padEnd(nodeWidth)}${row.address.padEnd(addressWidth)}${row.consul.padEnd(13)}${row.dns.padEnd(dnsWidth)}${row.excluded}`,
    );
    for (const check of row.failingChecks)
      lines.push(printable(`    ${check.status}: ${check.name}${check.output === '' ? '' : `: ${check.output}`}`));
  }
  if (plan.skipped.length > 0)
    lines.push('', 'not publishable (Route53 would refuse, or never published):', ...plan.skipped.map((s) => `  ${describeSkipped(s)}`));
  if (plan.floorEngaged)
    lines.push(
      '',
      `FLOOR ENGAGED: ${plan.keptByFloor.map(printable).join(', ')} kept in DNS although not eligible: only ${plan.eligible.length} eligible, minHealthy ${policy.minHealthy}`,
    );
  lines.push('');
  if (last === undefined) lines.push('last run:    none recorded');
  else {
    lines.push(printable(`last run:    ${ago(last.lastRun, now)} (${last.lastRun}) ${last.command} → ${last.result}: ${last.message}`));
    lines.push(
      last.lastChange == null ? 'last change: none recorded' : printable(`last change: ${ago(last.lastChange, now)} (${last.lastChange})`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `42s ago`, `5m ago`, `3h 12m ago`, `2d 4h ago`; `in the future` for a clock ahead of ours; the text itself when not a time. */
export function ago(time: string, now: Date): string {
  const then = Date.parse(time);
  if (Number.isNaN(then)) return time;
  const seconds = Math.round((now.getTime() - then) / 1000);
  if (seconds < -5) return 'in the future (clocks differ)';
  const s = Math.max(0, seconds);
  if (s < 90) return `${s}s ago`;
  const minutes = Math.floor(s / 60);
  if (minutes < 90) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m ago`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h ago`;
}
