// The policies applied to the diff (computePlan), in this order, each a pure function of the plan and
// the input it was computed from. They only ever take changes out of the plan, never add any:
//
// | policy        | when                                       | then                                         |
// |---------------|--------------------------------------------|----------------------------------------------|
// | keepFloor     | fewer eligible nodes than minHealthy       | the most credible deleted nodes stay in DNS  |
// |               | (belowFloor)                               | (never an excluded one); engaged only when   |
// |               |                                            | it keeps one (an empty zone keeps nothing)   |
// | capDeletions  | more deletes than maxDeletesPerRun         | the first by record key go; the rest wait    |
// |               |                                            | for a later run (deferred)                   |
import type { Health } from '../model.ts';
import { computePlan, nodesOf, type Plan, type PlanInput } from './plan.ts';
import { publishable } from './publishable.ts';
import { nodeOf } from './set-identifier.ts';

/** The plan a run applies: the diff, then the floor, then the cap on what the floor still deletes. */
export function planWithPolicies(input: PlanInput): Plan {
  return capDeletions(keepFloor(computePlan(input), input), input);
}

/** Never publish fewer nodes than minHealthy while any are published: keep the most credible of those the plan deletes. */
export function keepFloor(plan: Plan, { current, instances, excluded, policy }: PlanInput): Plan {
  if (plan.eligible.length >= policy.minHealthy) return plan;
  // Health as the diff saw it: of the registrations that can be published.
  const healthByNode = new Map(publishable(instances, policy).instances.map((instance) => [instance.node, instance.health]));
  const eligible = new Set(plan.eligible);
  const candidates = [...new Set(current.map((record) => nodeOf(policy.ownerId, record)))]
    .filter((node) => !eligible.has(node) && !excluded.has(node))
    .sort((a, b) => credibility(healthByNode.get(a)) - credibility(healthByNode.get(b)) || a.localeCompare(b));
  const kept = new Set(candidates.slice(0, policy.minHealthy - eligible.size));
  return {
    ...plan,
    // A kept node's records stay exactly as they are: neither deleted nor rewritten.
    deletes: plan.deletes.filter((record) => !kept.has(nodeOf(policy.ownerId, record))),
    published: [...new Set([...plan.published, ...kept])].sort(),
    belowFloor: true,
    // Nothing to keep (first run into an empty zone, or only excluded nodes left) is not an emergency.
    floorEngaged: kept.size > 0,
    keptByFloor: [...kept].sort(),
  };
}

/** Blast radius: at most maxDeletesPerRun deletes; the rest stay published until a later run. */
export function capDeletions(plan: Plan, { policy }: PlanInput): Plan {
  const deletes = plan.deletes.slice(0, Math.max(0, policy.maxDeletesPerRun));
  const deferredDeletes = plan.deletes.slice(deletes.length);
  return {
    ...plan,
    deletes,
    deferredDeletes: [...plan.deferredDeletes, ...deferredDeletes],
    published: [...new Set([...plan.published, ...nodesOf(policy.ownerId, deferredDeletes)])].sort(),
  };
}

/** Lower is more credible: a warning node still serves; one that left Consul is the least known. */
function credibility(health: Health | undefined): number {
  return health === undefined ? 3 : { passing: 0, warning: 1, critical: 2, maintenance: 2 }[health];
}
