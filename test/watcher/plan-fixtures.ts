// What the plan, policy and plan-policies tests share: the policy their fixtures are written for, and
// the plan with its policies for a situation where no node is excluded.
import type { DnsRecord, Instance } from '../../watcher/model.ts';
import type { Plan, PlanPolicy } from '../../watcher/plan/plan.ts';
import { planWithPolicies } from '../../watcher/plan/policy.ts';

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

/** planWithPolicies with no node excluded, under the fixture policy changed by `overrides`. */
export const planFor = (current: readonly DnsRecord[], instances: readonly Instance[], overrides: Partial<PlanPolicy> = {}): Plan =>
  planWithPolicies({ current, instances, excluded: none, policy: { ...policy, ...overrides } });
