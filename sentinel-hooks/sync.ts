// Read the truth (ROLE of each local instance, each Sentinel's master) and make the local
// agent's registrations say it. Shared by client-reconfig and reconcile, so both converge on
// the same state whatever order they run in.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errorOfKind } from '../common/cli/errors.ts';
import type { AgentService, ConsulClient } from '../common/consul/client.ts';
import { endpointKey, type Endpoint } from './args.ts';
import type { HooksConfig } from './config.ts';
import {
  decide,
  describeRole,
  sentinelView,
  type Decision,
  type Role,
  type SentinelAnswer,
  type SentinelView,
  type Tag,
} from './decide.ts';
import { askSentinel, readRole } from './truth.ts';

export interface SyncContext {
  readonly config: HooksConfig;
  readonly consul: ConsulClient;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Meta updated-by, e.g. "client-reconfig@redis-b". */
  readonly by: string;
  readonly now: () => Date;
}

export interface Truth {
  readonly view: SentinelView;
  readonly answers: readonly SentinelAnswer[];
  /** By `ip:port`: every local instance, plus any extra asked for. */
  readonly roles: ReadonlyMap<string, Role>;
}

export interface ApplyResult {
  /** A promotion was held back because another instance still holds the master tag. */
  readonly blocked: boolean;
  readonly misconfigured: boolean;
  /** Per local instance, what the run found and left (the textfile metrics). */
  readonly instances: readonly InstanceOutcome[];
}

export interface InstanceOutcome {
  /** `ip:port`. */
  readonly instance: string;
  readonly role: Role;
  /** The tag in Consul before the run; null when not registered. */
  readonly tagBefore: Tag | null;
  /** The tag (and check status) the run registered. */
  readonly decision: Decision;
  /** The registration was rewritten (tag, meta, address or a missing check). */
  readonly reregistered: boolean;
}

/** The run's deadline cut it short: Sentinel (or the next timer tick) runs it again. */
export class DeadlineError extends errorOfKind('DeadlineError', 'transient') {}

/** Waits `ms`; the run's deadline (an aborted `signal`) ends the wait with a DeadlineError. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (error) {
    throw new DeadlineError('deadline reached', { cause: error });
  }
}

export function serviceId(config: HooksConfig, instance: Endpoint): string {
  return `${config.service}-${instance.ip}-${instance.port}`;
}

export function checkId(config: HooksConfig, instance: Endpoint): string {
  return `${serviceId(config, instance)}:role`;
}

export function localInstances(config: HooksConfig): Endpoint[] {
  return config.instances.map((i) => ({ ip: i.address, port: i.port }));
}

export async function readTruth(ctx: SyncContext, extra: readonly Endpoint[] = []): Promise<Truth> {
  const probe = { timeoutMs: ctx.config.redisTimeoutMs, signal: ctx.signal, tls: ctx.config.tls };
  const redisProbe = { ...probe, auth: ctx.config.redisAuth };
  const sentinelProbe = { ...probe, auth: ctx.config.sentinelAuth };
  const targets = new Map<string, Endpoint>();
  for (const instance of [...localInstances(ctx.config), ...extra]) targets.set(endpointKey(instance), instance);
  const [answers, roles] = await Promise.all([
    Promise.all(ctx.config.sentinels.map((s) => askSentinel({ ip: s.address, port: s.port }, ctx.config.masterName, sentinelProbe))),
    Promise.all([...targets].map(async ([key, endpoint]) => [key, await readRole(endpoint, redisProbe)] as const)),
  ]);
  return { view: sentinelView(answers, ctx.config.sentinels.length), answers, roles: new Map(roles) };
}

function tagOf(service: AgentService | undefined): Tag | null {
  const tags = service?.Tags ?? [];
  if (tags.includes('master')) return 'master';
  if (tags.includes('replica')) return 'replica';
  return null;
}

/**
 * Break before make: a new master is tagged only once no other instance of the service is
 * tagged master and still healthy, so DNS never answers two. Bounded by waitMs (0: look once);
 * returns the holder if any.
 */
async function waitForNoOtherMaster(ctx: SyncContext, self: Endpoint, id: string, waitMs: number): Promise<string | null> {
  const deadline = Date.now() + waitMs;
  let holder: string | null = null;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const { value: entries } = await ctx.consul.healthService(ctx.config.service, { tag: 'master' });
    const others = entries.filter(
      (e) =>
        !(e.Service.ID === id && e.Service.Address === self.ip && e.Service.Port === self.port) &&
        (e.Service.Tags ?? []).includes('master') &&
        e.Checks.every((c) => c.Status !== 'critical'),
    );
    holder = others.length === 0 ? null : others.map((e) => `${e.Service.Address}:${e.Service.Port} on ${e.Node.Node}`).join(', ');
    if (holder === null || Date.now() >= deadline) return holder;
    if (attempt === 0) ctx.logger.info({ holder }, 'waiting for the previous master to leave DNS before tagging master');
    await sleep(50, ctx.signal);
  }
  return holder;
}

/**
 * `promotionWaitMs`: how long a promotion may wait for another master tag to leave. client-reconfig
 * waits (the old master's host is demoting it at the same moment); reconcile looks once and leaves
 * the promotion to its next tick, so it never holds the host's lock while a hook queues behind it.
 */
export async function applyTruth(
  ctx: SyncContext,
  truth: Truth,
  failover: string | undefined,
  promotionWaitMs: number,
): Promise<ApplyResult> {
  const { config, consul } = ctx;
  let blocked = false;
  let misconfigured = false;
  const outcomes: InstanceOutcome[] = [];
  const checks = await consul.agentChecks();
  for (const instance of localInstances(config)) {
    const key = endpointKey(instance);
    const id = serviceId(config, instance);
    const cid = checkId(config, instance);
    const role = truth.roles.get(key) ?? { kind: 'unreachable', error: 'not probed' };
    const current = await consul.agentService(id);
    const currentTag = tagOf(current);
    let decision: Decision = decide(key, role, truth.view, currentTag);
    misconfigured ||= decision.misconfigured;

    if (decision.tag === 'master' && currentTag !== 'master') {
      const holder = await waitForNoOtherMaster(ctx, instance, id, promotionWaitMs);
      if (holder !== null) {
        blocked = true;
        decision = {
          tag: 'replica',
          metaRole: 'failing',
          status: 'critical',
          misconfigured: false,
          output: `ROLE=master and Sentinels (${truth.view.agreement}) agree, but ${holder} is still tagged master in Consul: not promoted yet`,
        };
      }
    }

    const check = checks[cid];
    if (currentTag === 'master' && decision.tag !== 'master' && check !== undefined && check.Status !== 'critical') {
      // Fence first: out of DNS at once; the re-registration below may be cut off by the deadline.
      await consul.updateTtlCheck(cid, 'critical', `tag=master but ${describeRole(role)}; demoting`);
    }

    const tagChanged = currentTag !== decision.tag;
    const meta: Record<string, string> = {
      role: decision.metaRole,
      since: (tagChanged ? undefined : current?.Meta?.['since']) ?? ctx.now().toISOString(),
      failover: (
        failover ??
        (tagChanged ? `observed: Sentinels say master is ${truth.view.master ?? 'unknown'}` : (current?.Meta?.['failover'] ?? ''))
      ).slice(0, 512),
      'updated-by': ctx.by,
    };
    const unchanged =
      current !== undefined &&
      !tagChanged &&
      current.Address === instance.ip &&
      current.Port === instance.port &&
      (current.Tags ?? []).length === 1 &&
      current.Meta?.['role'] === meta['role'] &&
      current.Meta?.['failover'] === meta['failover'] &&
      check !== undefined;
    if (!unchanged) {
      await consul.registerService({
        ID: id,
        Name: config.service,
        Tags: [decision.tag],
        Address: instance.ip,
        Port: instance.port,
        Meta: meta,
        EnableTagOverride: false,
        Check: {
          CheckID: cid,
          Name: 'Redis ROLE matches tag',
          TTL: `${config.checkTtlSeconds}s`,
          Status: decision.status,
          Notes:
            'TTL check updated by st-api sentinel-hooks (client-reconfig and the reconcile timer): passing when ROLE and the Sentinel majority agree with the tag; TTL expiry means the reconciler is not running.',
        },
      });
    }
    // Always: refreshes the TTL and sets the output (registration cannot carry it).
    await consul.updateTtlCheck(cid, decision.status, decision.output);
    ctx.logger.info(
      { instance: key, tag: decision.tag, status: decision.status, changed: !unchanged, output: decision.output },
      unchanged ? 'registration unchanged' : 're-registered',
    );
    outcomes.push({ instance: key, role, tagBefore: currentTag, decision, reregistered: !unchanged });
  }
  return { blocked, misconfigured, instances: outcomes };
}
