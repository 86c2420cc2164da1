// The whole system on loopback, for the chaos run and (later) a local sandbox: three st-api
// nodes as real processes (so they can be killed and stopped), MariaDB with the demo catalog,
// Redis with two replicas and three Sentinels running the real hooks, the Consul double with one
// agent per st-api node running the production check and the production watch (the real
// watcher `handle`), and the Route53 double behind the real AWS SDK.
import { Resolver } from 'node:dns/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResourceRecordSet } from '@aws-sdk/client-route-53';
import { demoDataset, type Dataset } from '../../api/catalog/dataset.ts';
import { watcherConfigSchema } from '../../watcher/config.ts';
import { embeddedDemo, type EmbeddedDemo } from '../../api/demo/embedded.ts';
import { bundleProgram } from '../../sentinel-hooks/bundle.ts';
import { startConsulDouble, type ConsulDouble, type NodeHandle } from '../../doubles/consul/double.ts';
import { startRoute53Double, type Route53Double } from '../../doubles/route53/server.ts';
import { startMariaDb, type MariaDbServer } from '../mariadb.ts';
import { REPO_ROOT } from '../node-server.ts';
import { freePort, makeTempDir, ManagedServer, waitFor } from '../processes.ts';
import { createCatalogDatabase } from '../service.ts';
import { REDIS_MASTER_NAME, startRedisWithHooks, type RedisWithHooks } from './redis.ts';
import { SentinelReviver } from './sentinels.ts';

export const RECORD_NAME = 'play.example.com';
export const SERVICE = 'st-api';
export const KV_PREFIX = 'st-api/dns';
const DATABASE = 'st_catalog';
/** Distinct loopback addresses, as distinct hosts would have; all listen on one port (production: 8080). */
export const API_IPS = ['127.0.10.1', '127.0.10.2', '127.0.10.3'] as const;

/**
 * The production check (consul/agent/st-api-service.json) with its interval and timeout shortened
 * so a bounded run sees many transitions; success_before_passing and failures_before_critical
 * stay as shipped.
 */
export interface ChaosTimings {
  readonly checkIntervalMs: number;
  readonly checkTimeoutMs: number;
  /** The watcher's `reconcile` timer (production: st-dns-reconcile.timer, 2 min). */
  readonly reconcilePeriodMs: number;
}

export const DEFAULT_TIMINGS: ChaosTimings = { checkIntervalMs: 1000, checkTimeoutMs: 800, reconcilePeriodMs: 5000 };

export interface ApiNode {
  /** Consul node name, also the SetIdentifier suffix the watcher publishes. */
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly baseUrl: string;
  readonly server: ManagedServer;
  readonly agent: NodeHandle;
}

export interface ChaosSystem {
  readonly dir: string;
  readonly timings: ChaosTimings;
  readonly demo: EmbeddedDemo;
  readonly mariadb: MariaDbServer;
  readonly consul: ConsulDouble;
  readonly redis: RedisWithHooks;
  readonly sentinels: SentinelReviver;
  readonly route53: Route53Double;
  readonly zoneId: string;
  readonly apiNodes: readonly ApiNode[];
  /** The watcher's command line (bundled, as production runs a built file) and environment. */
  readonly watcherArgs: readonly string[];
  watcherEnv(agentAddr: string): Record<string, string>;
  /** What DNS publishes for the record: node name → address. */
  published(): Map<string, string>;
  /** Every A record under the record name (owned or not): what a resolver would answer. */
  publishedAddresses(): string[];
  kvGet(key: string): Promise<string | undefined>;
  kvPut(key: string, value: string): Promise<void>;
  kvDelete(key: string): Promise<void>;
  stop(): Promise<void>;
}

/** Premium subscribers beside the demo viewers: enough that many plays miss the cache, so a MySQL outage shows. */
export const CHAOS_VIEWERS = 2000;
/** Titles every chaos viewer's plan includes (api/catalog/dataset.ts: premium). */
export const CHAOS_TITLES = ['tt-demo-0001', 'tt-demo-0002', 'tt-demo-0003'] as const;

export function chaosViewer(i: number): string {
  return `chaos-viewer-${String(i).padStart(4, '0')}`;
}

function chaosDataset(nowMs: number): Dataset {
  const dataset = demoDataset(nowMs);
  const subscriptions = Array.from({ length: CHAOS_VIEWERS }, (_v, i) => ({
    userId: chaosViewer(i),
    planId: 'premium',
    expiresAt: nowMs + 30 * 86_400_000,
  }));
  return { ...dataset, subscriptions: [...dataset.subscriptions, ...subscriptions] };
}

interface ProductionService {
  service: { name: string; id: string; meta: Record<string, string>; check: Record<string, unknown> };
}

/** The agent API body for the production service definition, pointed at this node. */
export async function serviceRegistration(ip: string, port: number, timings: ChaosTimings): Promise<Record<string, unknown>> {
  const file = JSON.parse(await readFile(join(REPO_ROOT, 'consul/agent/st-api-service.json'), 'utf8')) as ProductionService;
  const check = file.service.check;
  return {
    Name: file.service.name,
    ID: file.service.id,
    Address: ip,
    Port: port,
    Meta: file.service.meta,
    Check: {
      CheckID: check['id'],
      Name: check['name'],
      Notes: check['notes'],
      HTTP: `http://${ip}:${port}/health/deep`,
      Method: check['method'],
      Interval: `${timings.checkIntervalMs}ms`,
      Timeout: `${timings.checkTimeoutMs}ms`,
      SuccessBeforePassing: check['success_before_passing'],
      FailuresBeforeCritical: check['failures_before_critical'],
    },
  };
}

export async function startChaosSystem(options: { timings?: ChaosTimings; log?: (line: string) => void } = {}): Promise<ChaosSystem> {
  const timings = options.timings ?? DEFAULT_TIMINGS;
  const log = options.log ?? (() => undefined);
  const dir = await makeTempDir('st-chaos');
  const started: { stop(): Promise<void> }[] = [];
  const stopStarted = async (): Promise<void> => {
    for (const part of started.reverse()) await part.stop().catch(() => undefined);
  };
  try {
    log('bundling st-api and the watcher');
    const apiEntry = join(dir, 'st-api.mjs');
    const watcherEntry = join(dir, 'watcher.mjs');
    // One self-contained file per program, as `npm run build` ships the hooks: a start costs ~0.2 s of CPU instead of ~1.3 s through tsx.
    await Promise.all([bundleProgram('api/main.ts', apiEntry), bundleProgram('watcher/main.ts', watcherEntry)]);

    log('starting MariaDB with the demo catalog');
    const mariadb = await startMariaDb();
    started.push({ stop: () => mariadb.stop() });
    await createCatalogDatabase(mariadb, DATABASE, chaosDataset(Date.now()));

    log('starting the Consul double, Redis and three Sentinels with the hooks');
    // Consul's own defaults (check_update_interval 5m, check start stagger), but watch queries
    // that return every few seconds so a reload is noticed promptly.
    const consul = await startConsulDouble({ watchQueryWaitMs: 5000 });
    started.push({ stop: () => consul.stop() });
    const redis = await startRedisWithHooks(consul, dir, 2000);
    started.push({ stop: () => redis.stop() });
    const sentinels = new SentinelReviver(redis.cluster);
    started.push({ stop: () => sentinels.stop() });
    await redis.cluster.waitStable(30_000);
    const resolver = new Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([`127.0.0.1:${consul.dnsPort}`]);
    await waitFor(async () => ((await resolver.resolve4(REDIS_MASTER_NAME)).length === 1 ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'Consul DNS to answer the Redis master',
    });

    const route53 = await startRoute53Double({ insyncDelayMs: 100 });
    started.push({ stop: () => route53.stop() });
    const zoneId = route53.createZone('example.com');
    const watcherConfig = join(dir, 'dns-watcher.json');
    await writeFile(
      watcherConfig,
      JSON.stringify(
        {
          recordName: RECORD_NAME,
          zoneId,
          minHealthy: 2,
          ttl: 5,
          kvPrefix: KV_PREFIX,
          // Every node here is on loopback; a watcher that knows the option refuses to publish loopback without it.
          ...('publishLoopback' in watcherConfigSchema.shape ? { publishLoopback: true } : {}),
        },
        null,
        2,
      ),
    );
    const watcherEnv = (agentAddr: string): Record<string, string> => ({
      ST_DNS_CONFIG: watcherConfig,
      CONSUL_HTTP_ADDR: agentAddr,
      AWS_ENDPOINT_URL_ROUTE_53: route53.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDCHAOS',
      AWS_SECRET_ACCESS_KEY: 'not-a-secret',
      AWS_REGION: 'us-east-1',
      ST_DNS_LOG_LEVEL: 'info',
    });
    const watcherArgs = [process.execPath, watcherEntry];

    log('starting three st-api nodes');
    const demo = embeddedDemo();
    const port = await freePort();
    const apiNodes: ApiNode[] = [];
    for (const [i, ip] of API_IPS.entries()) {
      const name = `api-node-${i + 1}`;
      const configFile = join(dir, `${name}.json`);
      await writeFile(
        configFile,
        JSON.stringify(
          {
            ...demo.rawConfig,
            listen: { host: ip, port },
            logLevel: 'warn',
            shutdown: { drainMs: 0, timeoutMs: 2000 },
            health: { probeTimeoutMs: 300 },
            mysql: { ...mariadb.connectionOptions(), database: DATABASE, poolSize: 8, connectTimeoutMs: 500, queryTimeoutMs: 500 },
            redis: {
              discovery: { name: REDIS_MASTER_NAME, dnsServer: `127.0.0.1:${consul.dnsPort}`, useSrv: true, refreshIntervalMs: 1000 },
              commandTimeoutMs: 100,
              connectTimeoutMs: 300,
            },
            // The load is a few viewers in a loop; the per-viewer budget is not what is tested.
            rateLimit: { playsPerMinute: 100_000 },
          },
          null,
          2,
        ),
      );
      const baseUrl = `http://${ip}:${port}`;
      const server = new ManagedServer({
        name: `st-api:${name}`,
        // ManagedServer takes no environment: env(1) sets it and execs node, so the pid is node's.
        command: '/usr/bin/env',
        args: [`ST_API_CONFIG=${configFile}`, process.execPath, apiEntry],
        logFile: join(dir, `${name}.log`),
        readyTimeoutMs: 30_000,
        stopTimeoutMs: 5000,
        isReady: async () => (await fetch(`${baseUrl}/health/live`, { signal: AbortSignal.timeout(1000) })).ok,
      });
      await server.start();
      started.push({ stop: () => server.stop() });
      const agent = await consul.addNode(name, ip);
      const response = await fetch(`${agent.agentAddr}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify(await serviceRegistration(ip, port, timings)),
      });
      if (!response.ok) throw new Error(`register ${name}: ${response.status} ${await response.text()}`);
      // consul/agent/st-api-watch.json: every st-api node's agent runs the watch.
      consul.watch({ node: name, type: 'service', service: SERVICE, args: [...watcherArgs, 'handle'], env: watcherEnv(agent.agentAddr) });
      apiNodes.push({ name, ip, port, baseUrl, server, agent });
    }

    const records = (): ResourceRecordSet[] => route53.records(zoneId) as ResourceRecordSet[];
    const system: ChaosSystem = {
      dir,
      timings,
      demo,
      mariadb,
      consul,
      redis,
      sentinels,
      route53,
      zoneId,
      apiNodes,
      watcherArgs,
      watcherEnv,
      published() {
        const published = new Map<string, string>();
        for (const set of records()) {
          if (set.Name !== `${RECORD_NAME}.` || set.Type !== 'A' || set.SetIdentifier?.startsWith(`${SERVICE}/`) !== true) continue;
          published.set(set.SetIdentifier.split('/')[1] ?? '', set.ResourceRecords?.[0]?.Value ?? '');
        }
        return published;
      },
      publishedAddresses() {
        return records()
          .filter((set) => set.Name === `${RECORD_NAME}.` && set.Type === 'A')
          .flatMap((set) => (set.ResourceRecords ?? []).map((r) => r.Value ?? ''));
      },
      async kvGet(key) {
        const response = await fetch(`${consul.httpAddr}/v1/kv/${key}?raw`, { signal: AbortSignal.timeout(2000) });
        return response.status === 404 ? undefined : await response.text();
      },
      async kvPut(key, value) {
        const response = await fetch(`${consul.httpAddr}/v1/kv/${key}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(2000) });
        if (!response.ok) throw new Error(`KV PUT ${key}: ${response.status}`);
      },
      async kvDelete(key) {
        const response = await fetch(`${consul.httpAddr}/v1/kv/${key}`, { method: 'DELETE', signal: AbortSignal.timeout(2000) });
        if (!response.ok) throw new Error(`KV DELETE ${key}: ${response.status}`);
      },
      stop: stopStarted,
    };
    return system;
  } catch (error) {
    await stopStarted();
    throw error;
  }
}
