// What the plan, policy and plan-policies tests share: the policy their fixtures are written for.
import type { DnsRecord } from '../../watcher/model.ts';
import type { PlanPolicy } from '../../watcher/plan/plan.ts';

export const policy: PlanPolicy = {
  recordName: 'play.example.com',
  ttl: 30,
  ownerId: 'st-api',
  minHealthy: 2,
  maxDeletesPerRun: 10,
  warningIsHealthy: true,
};

/** No node excluded. */
export const none: ReadonlySet<string> = new Set<string>();

/** `<type> <set identifier>` of each record, for comparing which records a plan touches. */
export const keys = (records: readonly DnsRecord[]): string[] => records.map((r) => `${r.type} ${r.setIdentifier}`);
