// One run of the watcher, read like a script: lock, read state, plan, apply, record the status.
import type { Logger } from 'pino';
import { errorOfKind } from '../common/cli/errors.ts';
import type { WatcherConfig } from './config.ts';
import { hasChanges, nodeOf, type Plan } from './plan/plan.ts';
import { planWithPolicies } from './plan/policy.ts';
import type { Change } from './provider/batches.ts';
import type { DnsProvider } from './provider/provider.ts';
import { ChangeRejectedError } from './provider/route53.ts';
import type { Registry } from './registry/registry.ts';
import type { HealthSource, Snapshot } from './source/source.ts';
import type { DnsRecord } from './model.ts';
import type { Exclusion, HeldLock, RunStatus } from './state/consul-state.ts';

/** Narrow interfaces, not the Consul and Route53 clients: unit tests pass in-memory ones. */
export interface ConvergeDeps {
  config: WatcherConfig;
  source: HealthSource;
  registry: Registry;
  provider: DnsProvider;
  logger: Logger;
  now: () => Date;
  holder: string;
  /** Told each completed run's result (the textfile metrics); not called when the run fails. */
  onConverged?: (result: ConvergeResult) => void;
}

export interface ConvergeResult {
  plan: Plan;
  result: 'applied' | 'unchanged' | 'stale-replaced';
  /** Route53 change ids of the batches applied, for `--wait`. */
  changeIds: string[];
  snapshot: Snapshot;
  status: RunStatus;
}

export class RetriesExhaustedError extends errorOfKind('RetriesExhaustedError', 'transient') {}

/** What would change right now; reads only. */
export async function planOnly(
  deps: ConvergeDeps,
  snapshot: Snapshot,
): Promise<{ plan: Plan; current: DnsRecord[]; exclusions: Exclusion[] }> {
  const [exclusions, current] = await Promise.all([deps.registry.exclusions(), deps.provider.listOwned()]);
  const plan = planWithPolicies({
    current,
    instances: snapshot.instances,
    excluded: new Set(exclusions.map((e) => e.node)),
    policy: deps.config,
  });
  return { plan, current, exclusions };
}

export interface ExclusionImpact {
  /** Consul has an instance of the service on the node, or DNS a record of it. */
  known: boolean;
  /** Nodes Consul has instances on, for a warning about a misspelt name. */
  knownNodes: string[];
  alreadyExcluded: boolean;
  /** The plan now, and with the node excluded: the same planWithPolicies, so the same floor rule. */
  before: Plan;
  after: Plan;
  /** Excluding the node takes away one that is or would be in DNS and leaves fewer eligible nodes than the floor. */
  breaksFloor: boolean;
}

/** What excluding `node` would do to DNS; reads only. */
export async function exclusionImpact(deps: ConvergeDeps, node: string): Promise<ExclusionImpact> {
  const [snapshot, exclusions, current] = await Promise.all([deps.source.read(), deps.registry.exclusions(), deps.provider.listOwned()]);
  const excluded = new Set(exclusions.map((exclusion) => exclusion.node));
  const before = planWithPolicies({ current, instances: snapshot.instances, excluded, policy: deps.config });
  const after = planWithPolicies({ current, instances: snapshot.instances, excluded: new Set([...excluded, node]), policy: deps.config });
  const knownNodes = [...new Set(snapshot.instances.map((instance) => instance.node))].sort();
  return {
    known: knownNodes.includes(node) || current.some((record) => nodeOf(deps.config.ownerId, record) === node),
    knownNodes,
    alreadyExcluded: excluded.has(node),
    before,
    after,
    breaksFloor: after.belowFloor && !excluded.has(node) && (before.published.includes(node) || before.eligible.includes(node)),
  };
}

/**
 * Passes per run: the first converges to the run's snapshot; each further one catches up with a
 * change Consul made meanwhile, whose own handler may have given up waiting for the lock.
 */
const MAX_PASSES = 3;

/** `handed`: the snapshot a watch handed `handle`; without one, the run reads the source once it holds the lock. */
export async function converge(deps: ConvergeDeps, command: string, handed?: Snapshot): Promise<ConvergeResult> {
  const { config, source, registry, provider, logger } = deps;
  return registry.withLock(deps.holder, config.lockWaitMs, async (lock) => {
    const previous = await registry.readStatus();
    let snapshot = handed ?? (await source.read());
    let result: ConvergeResult['result'] = 'unchanged';
    const appliedIndex = previous?.appliedIndex ?? null;
    if (appliedIndex !== null && snapshot.index < appliedIndex) {
      // Consul coalesces changes and re-fires handlers with old data after a reload, and another
      // agent's handler may already have applied newer state: never roll DNS back. Converge to
      // what Consul says now instead (which also covers an index that went backwards after a restore).
      logger.warn({ index: snapshot.index, appliedIndex }, 'stale invocation: converging to the current Consul state instead');
      snapshot = await source.read();
      result = 'stale-replaced';
    }

    const exclusions = await registry.exclusions();
    const excluded = new Set(exclusions.map((exclusion) => exclusion.node));
    const handWritten = exclusions.filter((exclusion) => exclusion.handWritten === true).map((exclusion) => exclusion.node);
    if (handWritten.length > 0)
      logger.warn({ nodes: handWritten }, 'exclusions written by hand (not JSON): kept out of DNS; rewrite them with watcher exclude');
    const callsBefore = provider.calls;
    const startIndex = snapshot.index;
    const changes = { create: 0, upsert: 0, delete: 0 };
    const changeIds: string[] = [];
    let plan: Plan | undefined;
    for (let pass = 1; ; pass += 1) {
      // The deletion cap is the run's, not each pass's: catching up never widens the blast radius.
      const converged = await convergeTo(deps, snapshot, excluded, config.maxDeletesPerRun - changes.delete, lock);
      plan = converged.plan;
      changeIds.push(...converged.changeIds);
      if (hasChanges(plan)) {
        changes.create += plan.creates.length;
        changes.upsert += plan.upserts.length;
        changes.delete += plan.deletes.length;
        if (result === 'unchanged') result = 'applied';
      }
      if (pass === MAX_PASSES) break;
      // Catch up before releasing: a handler that gave up waiting for the lock exited 75 and
      // Consul never re-runs it, so its change is ours to apply while we hold the lock.
      // Best effort: the changes are applied, so a Consul that stops answering now must not turn
      // this run into a failure whose status says DNS was left unchanged.
      let fresh: Snapshot;
      try {
        fresh = await source.read();
      } catch (error) {
        logger.warn({ err: error }, 'could not read Consul again to catch up; the next run will');
        break;
      }
      if (fresh.index <= snapshot.index) break;
      logger.info(
        { convergedTo: snapshot.index, consulIndex: fresh.index },
        'Consul moved on during the run: converging again before releasing the lock',
      );
      snapshot = fresh;
    }

    if (plan.skipped.length > 0) {
      logger.warn({ skipped: plan.skipped }, 'registrations left out of DNS: Route53 would refuse them, or they must never be published');
    }
    if (plan.floorEngaged) {
      logger.error(
        { eligible: plan.eligible, keptByFloor: plan.keptByFloor, minHealthy: config.minHealthy },
        'FLOOR ENGAGED: fewer healthy nodes than the floor; keeping the last published records',
      );
    } else if (plan.belowFloor) {
      // Nothing published to keep: a first run into an empty zone while checks still start critical
      // (normal, so info), or every other published node excluded (an operator's --force: warn).
      const removing = plan.deletes.length + plan.deferredDeletes.length > 0;
      logger[removing ? 'warn' : 'info'](
        { eligible: plan.eligible, minHealthy: config.minHealthy },
        'fewer eligible nodes than minHealthy, and no other published node to keep: publishing the eligible ones',
      );
    }
    const status = runStatus(deps, command, plan, snapshot, { excluded, handWritten }, provider.calls - callsBefore, result, {
      changes,
      startIndex,
      previousChange: previous?.lastChange ?? null,
    });
    lock.assertHeld();
    await registry.writeStatus(status);
    logger.info({ result, index: snapshot.index, changes: status.changes, published: plan.published.length }, status.message);
    const converged = { plan, result, changeIds, snapshot, status };
    deps.onConverged?.(converged);
    return converged;
  });
}

/** One pass: plan against Route53's records and apply, re-planning when Route53 rejects a batch. */
async function convergeTo(
  deps: ConvergeDeps,
  snapshot: Snapshot,
  excluded: Set<string>,
  deletesLeft: number,
  lock: HeldLock,
): Promise<{ plan: Plan; changeIds: string[] }> {
  const { config, provider, logger } = deps;
  for (let attempt = 1; ; attempt += 1) {
    const current = await provider.listOwned();
    const plan = planWithPolicies({
      current,
      instances: snapshot.instances,
      excluded,
      policy: { ...config, maxDeletesPerRun: deletesLeft },
    });
    if (!hasChanges(plan)) return { plan, changeIds: [] };
    try {
      return { plan, changeIds: (await provider.apply(changesOf(plan), () => lock.assertHeld())).changeIds };
    } catch (error) {
      if (!(error instanceof ChangeRejectedError)) throw error;
      logger.warn({ attempt, reason: error.message }, 'Route53 rejected the batch (records changed under us); re-planning');
      if (attempt >= config.replanAttempts)
        throw new RetriesExhaustedError(`Route53 rejected the batch ${attempt} times: ${error.message}`);
    }
  }
}

export function changesOf(plan: Plan): Change[] {
  return [
    ...plan.creates.map((record) => ({ action: 'CREATE' as const, record })),
    ...plan.upserts.map((record) => ({ action: 'UPSERT' as const, record })),
    ...plan.deletes.map((record) => ({ action: 'DELETE' as const, record })),
  ];
}

function runStatus(
  deps: ConvergeDeps,
  command: string,
  plan: Plan,
  snapshot: Snapshot,
  exclusions: { excluded: Set<string>; handWritten: string[] },
  calls: number,
  result: string,
  run: { changes: { create: number; upsert: number; delete: number }; startIndex: number; previousChange: string | null },
): RunStatus {
  const now = deps.now().toISOString();
  const changed = run.changes.create + run.changes.upsert + run.changes.delete > 0;
  // Changes are the whole run's (every pass); deferred deletions and the rest are the last pass's.
  const changes = { ...run.changes, deferredDeletes: plan.deferredDeletes.length };
  const parts = [`${plan.published.length} node(s) in DNS`, `${plan.eligible.length} eligible`];
  if (snapshot.index !== run.startIndex)
    parts.push(`caught up from Consul index ${run.startIndex} to ${snapshot.index} (Consul changed during the run)`);
  if (exclusions.handWritten.length > 0) parts.push(`hand-written exclusion(s), not JSON: ${exclusions.handWritten.join(', ')}`);
  if (plan.skipped.length > 0)
    parts.push(
      `${plan.skipped.length} registration(s) or address(es) not publishable: ${[...new Set(plan.skipped.map((s) => s.node))].join(', ')}`,
    );
  if (plan.floorEngaged) parts.push(`FLOOR ENGAGED (min ${deps.config.minHealthy}; kept ${plan.keptByFloor.join(', ')})`);
  else if (plan.belowFloor) parts.push(`below the floor (min ${deps.config.minHealthy}) with nothing else published to keep`);
  if (plan.deferredDeletes.length > 0) parts.push(`${plan.deferredDeletes.length} deletion(s) deferred by the per-run cap`);
  return {
    lastRun: now,
    command,
    result,
    message: parts.join('; '),
    consulIndex: snapshot.index,
    appliedIndex: snapshot.index,
    lastChange: changed ? now : run.previousChange,
    belowFloor: plan.belowFloor,
    floorEngaged: plan.floorEngaged,
    published: plan.published,
    eligible: plan.eligible,
    excluded: [...exclusions.excluded].sort(),
    handWrittenExclusions: [...exclusions.handWritten].sort(),
    keptByFloor: plan.keptByFloor,
    skipped: plan.skipped,
    changes,
    route53Calls: calls,
  };
}
