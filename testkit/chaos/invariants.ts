// What must hold however the faults land, sampled continuously: DNS never empty; a node whose
// check is critical (or that is excluded) leaves DNS within its bound unless the floor keeps it;
// exactly one healthy Redis master tag in Consul outside a failover window; st-api/dns/status
// says what DNS publishes once no watcher run is in flight. Plays are judged in run.ts.
import { sleep } from '../processes.ts';
import { KV_PREFIX, SERVICE, type ChaosSystem } from './system.ts';

export interface Violation {
  readonly at: number;
  readonly invariant: string;
  readonly detail: string;
}

export interface Bounds {
  /** Critical in Consul → out of DNS: one check interval + one watcher run + margin. */
  readonly criticalToOutMs: number;
  /** Excluded in KV → out of DNS: the watch does not fire on KV writes, so one reconcile period + one run + margin. */
  readonly excludedToOutMs: number;
  /** Not exactly one healthy master tag: Sentinel's down-after + election + the hooks + margin. */
  readonly failoverWindowMs: number;
  /** status disagreeing with DNS while no watcher runs (a killed run leaves it stale until the next). */
  readonly statusStaleMs: number;
}

interface RunStatus {
  published?: string[];
  keptByFloor?: string[];
  floorEngaged?: boolean;
}

export interface Sample {
  readonly at: number;
  readonly published: ReadonlyMap<string, string>;
  readonly addressCount: number;
  /** Consul's aggregated health of each st-api instance (node checks included). */
  readonly health: ReadonlyMap<string, string>;
  readonly excluded: readonly string[];
  readonly status: RunStatus | null;
  /** Redis registrations tagged master that DNS would answer (not critical), and all tagged master. */
  readonly healthyMasters: number;
  readonly taggedMasters: number;
  readonly watcherRunning: boolean;
}

async function getJson<T>(url: string): Promise<T | null> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return (await response.json()) as T;
}

interface HealthEntry {
  Node: { Node: string };
  Service: { Tags: string[] | null };
  Checks: { Status: string }[];
}

function aggregate(checks: readonly { Status: string }[]): string {
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

export async function takeSample(system: ChaosSystem, watcherRunning: () => boolean): Promise<Sample> {
  const consul = system.consul.httpAddr;
  // Read DNS last: a node seen critical and then still published really was both at once.
  const [api, redis, excludedKeys, statusText] = await Promise.all([
    getJson<HealthEntry[]>(`${consul}/v1/health/service/${SERVICE}`),
    getJson<HealthEntry[]>(`${consul}/v1/health/service/redis`),
    getJson<string[]>(`${consul}/v1/kv/${KV_PREFIX}/excluded/?keys`),
    system.kvGet(`${KV_PREFIX}/status`),
  ]);
  const running = watcherRunning();
  let status: RunStatus | null;
  try {
    status = statusText === undefined ? null : (JSON.parse(statusText) as RunStatus);
  } catch {
    status = null;
  }
  const masters = (redis ?? []).filter((e) => (e.Service.Tags ?? []).includes('master'));
  return {
    at: Date.now(),
    published: system.published(),
    addressCount: system.publishedAddresses().length,
    health: new Map((api ?? []).map((e) => [e.Node.Node, aggregate(e.Checks)])),
    excluded: (excludedKeys ?? []).map((key) => key.slice(`${KV_PREFIX}/excluded/`.length)).filter((node) => node !== ''),
    status,
    healthyMasters: masters.filter((e) => aggregate(e.Checks) !== 'critical').length,
    taggedMasters: masters.length,
    watcherRunning: running,
  };
}

/** Tracks each invariant across samples; an episode that breaks one is reported once. */
export class InvariantMonitor {
  readonly violations: Violation[] = [];
  readonly bounds: Bounds;
  readonly #criticalSince = new Map<string, number>();
  readonly #excludedSince = new Map<string, number>();
  /** Node → times it went from published to absent. */
  readonly #leftDns = new Map<string, number[]>();
  #previous: Sample | null = null;
  #notOneMasterSince: number | null = null;
  #statusWrongSince: number | null = null;
  readonly #open = new Set<string>();
  /** Longest a critical or excluded node stayed published (floor aside), ms. */
  longestDueOutMs = 0;
  longestNotOneMasterMs = 0;
  longestStatusWrongMs = 0;
  samples = 0;

  constructor(bounds: Bounds) {
    this.bounds = bounds;
  }

  /** When `node` left DNS after `since`, if it did. */
  leftDnsAfter(node: string, since: number): number | undefined {
    return this.#leftDns.get(node)?.find((at) => at >= since);
  }

  #episode(key: string, broken: boolean, at: number, invariant: string, detail: () => string): void {
    if (!broken) {
      this.#open.delete(key);
      return;
    }
    if (this.#open.has(key)) return;
    this.#open.add(key);
    this.violations.push({ at, invariant, detail: detail() });
  }

  observe(sample: Sample): void {
    this.samples++;
    const { at } = sample;
    this.#episode('dns-empty', sample.addressCount === 0, at, 'DNS never empty', () => 'the record answered no address');

    for (const [node] of sample.health) {
      if (this.#previous?.published.has(node) === true && !sample.published.has(node)) {
        const times = this.#leftDns.get(node) ?? [];
        times.push(at);
        this.#leftDns.set(node, times);
      }
    }
    const keptByFloor = new Set(sample.status?.keptByFloor ?? []);
    for (const [node, health] of sample.health) {
      const since = (map: Map<string, number>, on: boolean): number | undefined => {
        if (!on) map.delete(node);
        else if (!map.has(node)) map.set(node, at);
        return map.get(node);
      };
      const criticalSince = since(this.#criticalSince, health === 'critical');
      const excludedSince = since(this.#excludedSince, sample.excluded.includes(node));
      const published = sample.published.has(node) && !keptByFloor.has(node);
      const overdue = (start: number | undefined, bound: number): number => (start === undefined || !published ? 0 : at - start - bound);
      if (published && criticalSince !== undefined) this.longestDueOutMs = Math.max(this.longestDueOutMs, at - criticalSince);
      if (published && excludedSince !== undefined) this.longestDueOutMs = Math.max(this.longestDueOutMs, at - excludedSince);
      this.#episode(
        `critical:${node}`,
        overdue(criticalSince, this.bounds.criticalToOutMs) > 0,
        at,
        'a critical node leaves DNS in time',
        () =>
          `${node} critical in Consul for ${at - (criticalSince ?? at)} ms and still published (bound ${this.bounds.criticalToOutMs} ms)`,
      );
      this.#episode(
        `excluded:${node}`,
        overdue(excludedSince, this.bounds.excludedToOutMs) > 0,
        at,
        'an excluded node leaves DNS in time',
        () => `${node} excluded for ${at - (excludedSince ?? at)} ms and still published (bound ${this.bounds.excludedToOutMs} ms)`,
      );
    }

    if (sample.healthyMasters === 1) this.#notOneMasterSince = null;
    else this.#notOneMasterSince ??= at;
    const notOneFor = this.#notOneMasterSince === null ? 0 : at - this.#notOneMasterSince;
    this.longestNotOneMasterMs = Math.max(this.longestNotOneMasterMs, notOneFor);
    this.#episode(
      'redis-master',
      sample.healthyMasters > 1 || notOneFor > this.bounds.failoverWindowMs,
      at,
      'one Redis master tag in Consul',
      () => `${sample.healthyMasters} healthy registrations tagged master (${sample.taggedMasters} tagged) for ${notOneFor} ms`,
    );

    // Only judged while no watcher runs: a run writes Route53 first and the status after.
    const statusPublished = [...(sample.status?.published ?? [])].sort().join(',');
    const dnsPublished = [...sample.published.keys()].sort().join(',');
    const statusWrong = !sample.watcherRunning && sample.status !== null && statusPublished !== dnsPublished;
    if (!statusWrong) this.#statusWrongSince = null;
    else this.#statusWrongSince ??= at;
    const wrongFor = this.#statusWrongSince === null ? 0 : at - this.#statusWrongSince;
    this.longestStatusWrongMs = Math.max(this.longestStatusWrongMs, wrongFor);
    this.#episode(
      'status',
      wrongFor > this.bounds.statusStaleMs,
      at,
      'st-api/dns/status tells the truth',
      () => `status says [${statusPublished}], DNS publishes [${dnsPublished}] for ${wrongFor} ms`,
    );

    this.#previous = sample;
  }
}

/** Samples every `intervalMs` until stopped or the deadline; a failed sample is counted, not fatal. */
export function startSampling(
  system: ChaosSystem,
  monitor: InvariantMonitor,
  options: { intervalMs: number; deadline: number; watcherRunning: () => boolean; onError: (error: unknown) => void },
): { latest(): Sample | null; stop(): Promise<void> } {
  let running = true;
  let latest: Sample | null = null;
  const loop = (async () => {
    for (let n = 0; running && n < 1_000_000 && Date.now() < options.deadline; n++) {
      try {
        latest = await takeSample(system, options.watcherRunning);
        monitor.observe(latest);
      } catch (error) {
        options.onError(error);
      }
      await sleep(options.intervalMs);
    }
  })();
  return {
    latest: () => latest,
    async stop() {
      running = false;
      await loop;
    },
  };
}
