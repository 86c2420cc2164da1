// `npm run bench [-- --quick] [--profile[=cloudfront|akamai|nginx|wowza][:warm|:cold]]… [--profile=manifests:<scenario>]…
//                [--manifests-only] [--https-only]`
//
// Measures POST /v1/playback-urls against a real MariaDB and Redis (throwaway servers on loopback,
// from testkit) under autocannon, for each signer, on a warm cache and a cold one, next to an
// Express hello-world baseline on the same machine; prints one table with PASS/MISS per target.
// Then over HTTPS (listen.tls, ECDSA P-256 certificate from a test CA, keep-alive): the same
// baseline served by node:https, one signer warm against it, in the same table; the cost of a new
// TLS connection to st-api with a P-256 and an RSA-2048 certificate (full handshakes, no
// resumption); and HTTP/1.1 against HTTP/2 over TLS for the same POST with h2load, when installed
// (Debian: nghttp2-client). --https-only runs the HTTPS part alone (MariaDB and Redis still start).
// Then the tokenized-manifest route (bench/manifests.ts), with its own table; --manifests-only runs
// that part alone (no MariaDB, no Redis).
// A miss is reported, not fatal: the exit code is 0 unless the bench itself broke.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import type { z } from 'zod';
import { configSchema, parseConfig } from '../api/config.ts';
import { createTestCa } from '../testkit/tls.ts';
import { embeddedDemo, type EmbeddedDemo } from '../api/demo/embedded.ts';
import { DELIVERY_MODES_BY_SCHEME } from '../api/delivery/delivery.ts';
import { signerConfigSchema, signerFromConfig } from '../api/signing/config.ts';
import { createCatalogDatabase } from '../testkit/service.ts';
import { startMariaDb, type MariaDbServer } from '../testkit/mariadb.ts';
import { startRedis, type RedisServer } from '../testkit/redis.ts';
import { printProfile } from './cpu-profile.ts';
import { coldRequests, FULL_SIZES, generateCatalog, QUICK_SIZES, userIndex, warmRequests, ZIPF_S, type PlayRequest } from './dataset.ts';
import { processCpu, runLoad, type LoadResult, type Picker, type Prepared } from './load.ts';
import { MANIFEST_SCENARIOS, runManifestBench } from './manifests.ts';
import { killAllChildrenNow, REPO_ROOT, stApiServer, type NodeServer } from '../testkit/node-server.ts';
import {
  baselineRun,
  DISTURBED_CPU_PERCENT,
  formatTable,
  log,
  mean,
  overHttps,
  quietMachine,
  request,
  trustCa,
  track,
  untrack,
  waitReady,
  type ServingFiles,
} from './steps.ts';
import { h2loadVersion, measureHandshakes, protocolServer, runH2load, type HandshakeResult, type ProtocolResult } from './tls.ts';
import { signTokens } from './tokens.ts';

const SIGNERS = ['cloudfront', 'akamai', 'nginx', 'wowza'] as const;
type SignerType = (typeof SIGNERS)[number];

const TARGETS = { warmRatio: 0.5, coldRatio: 0.25, p99Factor: 3 };
const CONNECTIONS = 50;
/** The signer of the HTTPS row: CloudFront, the first of the table. */
const HTTPS_SIGNER: SignerType = 'cloudfront';
/** New TLS connections in flight at once while measuring handshakes. */
const HANDSHAKE_CONCURRENCY = 4;
const HANDSHAKE_LIMIT = 50_000;
const DATABASE = 'st_bench';
/** The test launcher's 32 MB InnoDB pool is sized for tiny test catalogs; this one holds the whole bench catalog. */
const BUFFER_POOL_BYTES = 256 * 1024 * 1024;
/** High enough never to refuse a play at bench rates (the hottest user gets ~8 % of them), so the Redis counter still runs. */
const PLAYS_PER_MINUTE = 100_000;

interface Args {
  quick: boolean;
  /** Scenarios to run again under node --cpu-prof after the measurements; --profile alone means cloudfront warm. */
  profile: { signer: SignerType; kind: 'warm' | 'cold' }[];
  /** Tokenized-manifest scenarios (bench/manifests.ts) to profile the same way. */
  manifestProfile: string[];
  /** Only the tokenized-manifest part. */
  manifestsOnly: boolean;
  /** Only the HTTPS part. */
  httpsOnly: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let manifestsOnly = false;
  let httpsOnly = false;
  const profile: Args['profile'] = [];
  const manifestProfile: string[] = [];
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg === '--manifests-only') manifestsOnly = true;
    else if (arg === '--https-only') httpsOnly = true;
    else if (arg === '--profile') profile.push({ signer: 'cloudfront', kind: 'warm' });
    else if (arg.startsWith('--profile=manifests:')) {
      const scenario = arg.slice('--profile=manifests:'.length);
      if (!MANIFEST_SCENARIOS.includes(scenario))
        throw new Error(`--profile=manifests:SCENARIO, SCENARIO one of ${MANIFEST_SCENARIOS.join(', ')}`);
      manifestProfile.push(scenario);
    } else if (arg.startsWith('--profile=')) {
      const [signer = '', kind = 'warm'] = arg.slice('--profile='.length).split(':');
      if (!(SIGNERS as readonly string[]).includes(signer) || (kind !== 'warm' && kind !== 'cold')) {
        throw new Error(`--profile=SIGNER[:warm|:cold], SIGNER one of ${SIGNERS.join(', ')}`);
      }
      profile.push({ signer: signer as SignerType, kind });
    } else
      throw new Error(
        `unknown argument ${arg} (expected --quick, --profile[=signer[:warm|:cold]], --profile=manifests:scenario, --manifests-only, --https-only)`,
      );
  }
  if (manifestsOnly && httpsOnly) throw new Error('--manifests-only and --https-only exclude each other');
  return { quick, profile, manifestProfile, manifestsOnly, httpsOnly };
}

interface Timing {
  warmupSeconds: number;
  measureSeconds: number;
  watchdogMs: number;
}

interface CacheStats {
  lookups: Record<string, number>;
  /** By `dependency/operation`. */
  dependencyErrors: Record<string, number>;
  /** By problem code. */
  denials: Record<string, number>;
}

interface Row {
  name: string;
  kind: 'baseline' | 'warm' | 'cold';
  signer?: SignerType;
  /** Over TLS (listen.tls / the HTTPS baseline). */
  https?: boolean;
  load: LoadResult;
  cache?: { hitRatio: Record<string, number>; dependencyErrors: Record<string, number>; denials: Record<string, number> };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sizes = args.quick ? QUICK_SIZES : FULL_SIZES;
  const timing: Timing = args.quick
    ? { warmupSeconds: 1, measureSeconds: 2, watchdogMs: 12 * 60_000 }
    : { warmupSeconds: 3, measureSeconds: 10, watchdogMs: 20 * 60_000 };
  const started = performance.now();
  const watchdog = setTimeout(() => {
    log(`gave up after ${timing.watchdogMs / 1000} s; stopping every process it started`);
    killAllChildrenNow();
    process.exit(1); // testkit's exit hook kills MariaDB and Redis and removes their dirs
  }, timing.watchdogMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every process it started`);
      killAllChildrenNow();
      process.exit(130);
    });
  }

  if (args.manifestsOnly) {
    try {
      await runManifestBench({ timing, profile: args.manifestProfile });
    } finally {
      clearTimeout(watchdog);
    }
    log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return;
  }

  const workDir = mkdtempSync(join(tmpdir(), 'st-bench-'));
  const servers = new Set<NodeServer>();
  let mariadb: MariaDbServer | undefined;
  let redisServer: RedisServer | undefined;
  let redis: Redis | undefined;
  try {
    log(`starting MariaDB and Redis, generating ${sizes.contents} contents and ${sizes.users} users`);
    const nowMs = Date.now();
    const catalog = generateCatalog(sizes, nowMs);
    [mariadb, redisServer] = await Promise.all([startMariaDb(), startRedis()]);
    const seedStarted = performance.now();
    await createCatalogDatabase(mariadb, DATABASE, catalog.dataset);
    await tuneMariaDb(mariadb);
    await settle(mariadb.pid);
    const { dataset } = catalog;
    log(
      `seeded ${dataset.contents.length} contents, ${dataset.contents.reduce((n, c) => n + c.renditions.length, 0)} renditions, ` +
        `${dataset.purchases.length} purchases, ${dataset.subscriptions.length} subscriptions in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
    );
    // `client` for closures; `redis` is what the finally block disconnects.
    const client = new Redis({
      host: redisServer.host,
      port: redisServer.port,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
    });
    redis = client;
    await client.connect();
    const dependencies = { mariadb: mariadb.pid, redis: redisServer.pid };

    const demo = embeddedDemo();
    const warm = warmRequests(catalog, sizes.warmPool, sizes);
    const warmUsers = [...new Set(warm.map((request) => request.userId))];
    const cold = coldRequests(catalog, warmUsers.map(userIndex), sizes.coldPool, sizes);
    const signStarted = performance.now();
    const tokens = await signTokens(demo, warmUsers, 3 * 3600);
    log(`signed ${tokens.size} client tokens (RS256) in ${((performance.now() - signStarted) / 1000).toFixed(1)} s`);
    const prepare = (requests: readonly PlayRequest[]): Prepared[] =>
      requests.map((request) => ({ authorization: `Bearer ${tokens.get(request.userId) ?? ''}`, body: request.body }));
    const warmPool = prepare(warm);
    const warmDistinct = prepare(dedupe(warm));
    const coldPool = prepare(cold);

    const scenarioOptions = (server: NodeServer, signer: SignerType, kind: 'warm' | 'cold'): ScenarioOptions => ({
      server,
      signer,
      kind,
      redis: client,
      timing,
      warmPool,
      warmDistinct,
      coldPool,
      expect: expectationFor(demo, signer),
      watch: { server: server.pid, ...dependencies },
    });

    const rows: Row[] = [];
    const baseline = async (name: string, tls?: ServingFiles) => {
      const load = await baselineRun(servers, name, uniform(warmPool), {
        connections: CONNECTIONS,
        timing,
        watch: (server) => ({ server: server.pid, ...dependencies }),
        check: (server) => checkOne(server, warmPool[0], 'baseline'),
        ...(tls === undefined ? {} : { tls }),
      });
      rows.push({ name, kind: 'baseline', https: tls !== undefined, load });
    };

    // A baseline before each signer and one at the end: each signer is compared with the two runs that
    // bracket it, because this machine's speed drifts over minutes (shared host).
    if (!args.httpsOnly) {
      for (const signer of SIGNERS) {
        await baseline(`baseline (before ${signer})`);
        for (const kind of ['warm', 'cold'] as const) {
          const configFile = writeConfig(workDir, demo, signer, kind, mariadb, redisServer);
          const server = await track(servers, stApiServer(configFile));
          try {
            rows.push(await scenario(scenarioOptions(server, signer, kind)));
          } finally {
            await untrack(servers, server);
          }
        }
      }
      await baseline('baseline (end)');
    } else {
      // One plain run beside the HTTPS ones, for what TLS costs the baseline itself.
      await baseline('baseline (http)');
    }

    // HTTPS: the same baseline over TLS around one signer's warm row, both with the P-256 certificate.
    const caDir = join(workDir, 'tls');
    mkdirSync(caDir);
    const ca = createTestCa(caDir);
    trustCa(ca.caPem);
    const ecdsa = ca.server('bench', [], { keyType: 'ec' });
    const rsa = ca.server('bench-rsa', [], { keyType: 'rsa' });
    await baseline('baseline https (before)', ecdsa);
    const handshakes: { key: string; result: HandshakeResult }[] = [];
    const handshakeOptions = { seconds: timing.measureSeconds, concurrency: HANDSHAKE_CONCURRENCY, limit: HANDSHAKE_LIMIT };
    {
      const configFile = writeConfig(workDir, demo, HTTPS_SIGNER, 'warm', mariadb, redisServer, ecdsa);
      const server = overHttps(await track(servers, stApiServer(configFile)));
      try {
        const row = await scenario(scenarioOptions(server, HTTPS_SIGNER, 'warm'));
        rows.push({ ...row, name: `${row.name} https`, https: true });
        handshakes.push({ key: 'ECDSA P-256', result: await measureHandshakes(server, handshakeOptions) });
      } finally {
        await untrack(servers, server);
      }
    }
    await baseline('baseline https (end)', ecdsa);
    {
      const configFile = writeConfig(workDir, demo, HTTPS_SIGNER, 'warm', mariadb, redisServer, rsa);
      const server = overHttps(await track(servers, stApiServer(configFile)));
      try {
        await waitReady(server);
        handshakes.push({ key: 'RSA-2048', result: await measureHandshakes(server, handshakeOptions) });
      } finally {
        await untrack(servers, server);
      }
    }
    for (const { key, result } of handshakes) log(`handshakes ${key}: ${result.perSecond.toFixed(0)}/s`);
    const protocols = await compareProtocols(servers, workDir, ecdsa, warmPool[0], timing, args.quick ? 1 : 2);

    printReport(rows, sizes, timing, dataset.purchases.length, dataset.subscriptions.length, tokens.size, warmDistinct.length);
    printTls(handshakes, handshakeOptions, protocols, timing);
    if (args.httpsOnly) {
      log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      return;
    }

    for (const { signer, kind } of args.profile) {
      const profileDir = join(workDir, `cpu-profile-${signer}-${kind}`);
      const configFile = writeConfig(workDir, demo, signer, kind, mariadb, redisServer);
      if (kind === 'warm') {
        // Prime the cache from an unprofiled node, so the profile shows the warm path, not the prime.
        const primer = await track(servers, stApiServer(configFile));
        try {
          await waitReady(primer);
          await redis.flushall();
          await prime(primer, warmDistinct);
        } finally {
          await untrack(servers, primer);
        }
      }
      const server = await track(servers, stApiServer(configFile, profileDir));
      let row: Row;
      try {
        row = await scenario({ ...scenarioOptions(server, signer, kind), primed: kind === 'warm' });
      } finally {
        await untrack(servers, server);
      }
      printProfile(profileDir, REPO_ROOT, [
        `CPU profile (node --cpu-prof) of the st-api process, ${row.name}: ${row.load.requestsPerSecond.toFixed(0)} req/s, p99 ${row.load.p99} ms, ${row.load.non2xx} non-2xx under the profiler;`,
        `  covers start-up, ${row.kind === 'warm' ? '' : 'flush, '}warm-up and measurement${row.kind === 'warm' ? ' (cache primed by another node)' : ''};`,
      ]);
    }

    // MariaDB and Redis sit idle from here on; the manifest route uses neither.
    await runManifestBench({ timing, baselinePool: warmPool, profile: args.manifestProfile });
    log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    clearTimeout(watchdog);
    await Promise.allSettled([...servers].map((server) => server.stop()));
    redis?.disconnect();
    await Promise.allSettled([mariadb?.stop(), redisServer?.stop()]);
    rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * HTTP/1.1 against HTTP/2 over TLS (bench/protocol-server.ts, one handler behind both), `rounds` times
 * alternately, with h2load; empty when h2load is not installed.
 */
async function compareProtocols(
  servers: Set<NodeServer>,
  workDir: string,
  tls: ServingFiles,
  sample: Prepared | undefined,
  timing: Timing,
  rounds: number,
): Promise<{ version: string | undefined; results: ProtocolResult[] }> {
  const version = await h2loadVersion();
  if (version === undefined || sample === undefined) {
    log('h2load not found (Debian: apt-get install nghttp2-client); HTTP/2 not measured');
    return { version, results: [] };
  }
  const results: ProtocolResult[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const protocol of ['h1', 'h2'] as const) {
      const server = await track(servers, protocolServer(protocol, tls));
      try {
        const result = await runH2load(server, protocol, sample, {
          dir: workDir,
          connections: CONNECTIONS,
          warmupSeconds: timing.warmupSeconds,
          seconds: timing.measureSeconds,
        });
        log(`h2load ${protocol}: ${result.requestsPerSecond.toFixed(0)} req/s`);
        results.push(result);
      } finally {
        await untrack(servers, server);
      }
    }
  }
  return { version, results };
}

async function tuneMariaDb(server: MariaDbServer): Promise<void> {
  const connection = await mysql.createConnection({ ...server.connectionOptions(), database: DATABASE });
  try {
    await connection.query('SET GLOBAL innodb_buffer_pool_size = ?', [BUFFER_POOL_BYTES]);
    // Statistics for the optimiser after a bulk load, as a DBA would after an import.
    await connection.query(
      'ANALYZE TABLE contents, renditions, purchases, subscriptions, plan_contents, subscription_plans, device_classes',
    );
  } finally {
    await connection.end();
  }
}

/** After the bulk load InnoDB keeps working (purge, buffer pool resize); wait (bounded) until it idles. */
async function settle(pid: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  let cpu = await processCpu(pid, 1000);
  while (cpu !== undefined && cpu > 10 && performance.now() < deadline) cpu = await processCpu(pid, 1000);
  if (cpu !== undefined && cpu > 10) log(`MariaDB still at ${cpu.toFixed(0)} % CPU after 30 s; measuring anyway`);
}

/** One node of one signer type: the demo's generated signer config for that CDN, alone. */
function writeConfig(
  dir: string,
  demo: EmbeddedDemo,
  signer: SignerType,
  kind: 'warm' | 'cold',
  mariadb: MariaDbServer,
  redis: RedisServer,
  tls?: ServingFiles,
): string {
  const cdns = demo.rawConfig['cdns'] as { signer: { type: string } }[];
  const cdn = cdns.find((entry) => entry.signer.type === signer);
  if (cdn === undefined) throw new Error(`the embedded demo has no ${signer} CDN`);
  const raw: Record<string, unknown> = {
    ...demo.rawConfig,
    listen: { host: '127.0.0.1', port: 0, ...(tls === undefined ? {} : { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }) },
    // info, as in production: one access-log line per play (its cost is in the figures); the "listening" line carries the port.
    logLevel: 'info',
    shutdown: { drainMs: 0, timeoutMs: 5000 },
    cdns: [{ ...cdn, weight: 1 }],
    mysql: { ...mariadb.connectionOptions(), database: DATABASE },
    redis: { host: redis.host, port: redis.port },
    // Cold: content and rights entries live 1 s, and the cold sequence never repeats a content within
    // a few seconds, so each of those lookups misses (device classes keep the default TTL and hit).
    ...(kind === 'cold' ? { cache: { contentSeconds: 1, rightsSeconds: 1, denialSeconds: 1 } } : {}),
    ...('rateLimit' in configSchema.shape ? { rateLimit: { playsPerMinute: PLAYS_PER_MINUTE } } : {}),
  };
  parseConfig(raw, {}); // fail here, with every bad key named, rather than in the child
  const file = join(dir, `st-api-${signer}-${kind}${tls === undefined ? '' : '-https'}.json`);
  writeFileSync(file, JSON.stringify(raw), { mode: 0o600 });
  return file;
}

interface ScenarioOptions {
  server: NodeServer;
  signer: SignerType;
  kind: 'warm' | 'cold';
  redis: Redis;
  timing: Timing;
  warmPool: readonly Prepared[];
  warmDistinct: readonly Prepared[];
  coldPool: readonly Prepared[];
  /** What the sample play's answer must be. */
  expect: Expectation;
  /** Warm only: Redis already holds the primed cache; neither flush nor prime. */
  primed?: boolean;
  watch: Record<string, number>;
}

async function scenario(options: ScenarioOptions): Promise<Row> {
  const { server, signer, kind, redis, timing } = options;
  const name = `${signer} ${kind}`;
  await waitReady(server);
  if (options.primed !== true) await redis.flushall();
  const base = { baseUrl: server.baseUrl, connections: CONNECTIONS };
  let pick: Picker;
  if (kind === 'warm') {
    await checkOne(server, options.warmPool[0], options.expect);
    // Prime: every distinct request of the pool once, so all its lookups are cached; then the Zipf mix.
    if (options.primed !== true) {
      await quietMachine(options.watch);
      await prime(server, options.warmDistinct);
    }
    pick = uniform(options.warmPool);
    await runLoad({ ...base, pick, durationSeconds: timing.warmupSeconds });
  } else {
    // One shared cursor: the warm-up and the measurement never send the same pair.
    let cursor = 0;
    const next = () => options.coldPool[cursor++ % options.coldPool.length] as Prepared;
    await checkOne(server, next(), options.expect);
    pick = () => next();
    await runLoad({ ...base, pick, durationSeconds: timing.warmupSeconds });
    await redis.flushall();
  }
  await quietMachine(options.watch);
  const before = await scrape(server);
  const load = await runLoad({ ...base, pick, durationSeconds: timing.measureSeconds, watch: options.watch });
  const after = await scrape(server);
  const hitRatio: Record<string, number> = {};
  for (const lookup of ['content', 'rights', 'device_class']) {
    const delta = (result: string) => (after.lookups[`${lookup}/${result}`] ?? 0) - (before.lookups[`${lookup}/${result}`] ?? 0);
    const all = delta('hit') + delta('miss') + delta('error');
    hitRatio[lookup] = all === 0 ? Number.NaN : delta('hit') / all;
  }
  log(`${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.p99} ms, non-2xx ${load.non2xx}`);
  return {
    name,
    kind,
    signer,
    load,
    cache: {
      hitRatio,
      dependencyErrors: difference(after.dependencyErrors, before.dependencyErrors),
      denials: difference(after.denials, before.denials),
    },
  };
}

async function prime(server: NodeServer, distinct: readonly Prepared[]): Promise<void> {
  const load = await runLoad({ baseUrl: server.baseUrl, connections: CONNECTIONS, pick: cycle(distinct, 0), amount: distinct.length });
  if (load.non2xx > 0 || load.errors > 0) throw new Error(`priming the cache: ${load.non2xx} non-2xx, ${load.errors} errors`);
}

/** The CDN a node of this signer type plays through, and the playback policy, for checking answers. */
interface Expectation {
  signer: SignerType;
  cdn: { name: string; origin: string; signer: z.input<typeof signerConfigSchema> };
  policy: { urlTtlSeconds: number; clockSkewSeconds: number };
}

function expectationFor(demo: EmbeddedDemo, signer: SignerType): Expectation {
  const cdn = (demo.rawConfig['cdns'] as Expectation['cdn'][]).find((entry) => entry.signer.type === signer);
  if (cdn === undefined) throw new Error(`the embedded demo has no ${signer} CDN`);
  const { playback } = parseConfig(demo.rawConfig, {});
  return { signer, cdn, policy: { urlTtlSeconds: playback.urlTtlSeconds, clockSkewSeconds: playback.clockSkewSeconds } };
}

/**
 * One request through fetch, its answer checked, before any load: a bench of error pages measures
 * nothing. A signer's answer must use its default delivery mode and carry exactly the token its
 * signer makes for that manifest and expiry: in the URL's path (nginx), in the URL's query (wowza),
 * or in cookies for the manifest's directory beside a token-free URL (CloudFront, Akamai).
 * CloudFront's ECDSA signature is randomised, so there its policy and key id are compared.
 */
async function checkOne(server: NodeServer, sample: Prepared | undefined, expect: Expectation | 'baseline'): Promise<void> {
  if (sample === undefined) throw new Error('empty request pool');
  const response = await request(`${server.baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: sample.authorization },
    body: sample.body,
    timeoutMs: 5000,
  });
  const { text } = response;
  const fail = (why: string) => new Error(`${server.name}: sample play ${why}: ${text.slice(0, 600)}`);
  if (response.status !== 200) throw fail(`answered ${response.status}`);
  const answer = JSON.parse(text) as { url?: unknown; cdn?: unknown; delivery?: unknown; expiresAt?: unknown; cookies?: unknown };
  if (typeof answer.url !== 'string' || !answer.url.startsWith('https://')) throw fail('has no URL');
  if (expect === 'baseline') return;

  const { cdn, signer } = expect;
  const mode = DELIVERY_MODES_BY_SCHEME[signer]?.[0];
  if (answer.cdn !== cdn.name) throw fail(`came from CDN ${String(answer.cdn)}, expected ${cdn.name}`);
  if (answer.delivery !== mode) throw fail(`has delivery ${String(answer.delivery)}, expected ${signer}'s default ${mode}`);
  const expires = Date.parse(String(answer.expiresAt)) / 1000;
  if (!Number.isInteger(expires) || expires * 1000 < Date.now() + expect.policy.urlTtlSeconds * 500)
    throw fail('has no expiresAt in the future');
  if (!answer.url.startsWith(`${cdn.origin}/`)) throw fail(`is not on ${cdn.origin}`);
  const tokenSegments = mode === 'path-token' ? (/^\/t\/[^/]+\/[0-9]+/.exec(answer.url.slice(cdn.origin.length))?.[0] ?? '') : '';
  const query = answer.url.indexOf('?');
  const manifestPath = answer.url.slice(cdn.origin.length + tokenSegments.length, query === -1 ? undefined : query);
  if (!/^\/vod\/[A-Za-z0-9_-]+\/(hls\/[0-9]+p\/master\.m3u8|dash\/[0-9]+p\/manifest\.mpd)$/.test(manifestPath))
    throw fail(`names no catalog manifest (${manifestPath})`);
  const scopePath = manifestPath.slice(0, manifestPath.lastIndexOf('/') + 1);
  const signRequest = {
    origin: cdn.origin,
    manifestPath,
    scopePath,
    notBefore: new Date((expires - expect.policy.urlTtlSeconds - expect.policy.clockSkewSeconds) * 1000),
    expiresAt: new Date(expires * 1000),
  };
  const urlSigner = signerFromConfig(signerConfigSchema.parse(cdn.signer));
  if (mode === 'path-token' || mode === 'query') {
    const expected =
      mode === 'path-token' ? `${cdn.origin}${urlSigner.pathToken?.(signRequest) ?? '(none)'}${manifestPath}` : urlSigner.sign(signRequest);
    if (answer.cookies !== undefined || answer.url !== expected)
      throw fail(`is not the ${mode} URL the ${signer} signer makes (${expected})`);
    return;
  }
  if (mode !== 'cookie') throw fail(`has delivery ${mode}, which this bench does not check`);
  if (query !== -1) throw fail('carries a query in cookie delivery');
  const cookies = answer.cookies as
    | { name?: unknown; value?: unknown; domain?: unknown; path?: unknown; expiresAt?: unknown; secure?: unknown; httpOnly?: unknown }[]
    | undefined;
  const expected = urlSigner.cookieToken?.(signRequest) ?? [];
  if (!Array.isArray(cookies) || cookies.length === 0 || cookies.length !== expected.length)
    throw fail(`does not carry the ${expected.length} cookies the ${signer} signer makes`);
  const host = new URL(cdn.origin).hostname;
  for (const [index, cookie] of cookies.entries()) {
    const [name, value] = expected[index] ?? ['', ''];
    const randomised = signer === 'cloudfront' && name === 'CloudFront-Signature';
    if (cookie.name !== name || (!randomised && cookie.value !== value) || typeof cookie.value !== 'string' || cookie.value === '')
      throw fail(`cookie ${index} is not ${name} as the signer makes it`);
    if (
      cookie.domain !== host ||
      cookie.path !== scopePath ||
      cookie.expiresAt !== answer.expiresAt ||
      cookie.secure !== true ||
      cookie.httpOnly !== true
    ) {
      throw fail(`cookie ${name} is not host-only for ${host}, path ${scopePath}, Secure, HttpOnly, expiring with the URL`);
    }
  }
}

async function scrape(server: NodeServer): Promise<CacheStats> {
  const { text } = await request(`${server.baseUrl}/metrics`, { timeoutMs: 5000 });
  const lookups: Record<string, number> = {};
  const dependencyErrors: Record<string, number> = {};
  const denials: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const lookup = /^st_api_cache_lookups_total\{kind="([^"]+)",result="([^"]+)"\} (\S+)$/.exec(line);
    if (lookup !== null) lookups[`${lookup[1]}/${lookup[2]}`] = Number(lookup[3]);
    const failure = /^st_api_dependency_errors_total\{dependency="([^"]+)",operation="([^"]+)"\} (\S+)$/.exec(line);
    if (failure !== null) dependencyErrors[`${failure[1]}/${failure[2]}`] = Number(failure[3]);
    const denial = /^st_api_playback_denials_total\{code="([^"]+)"\} (\S+)$/.exec(line);
    if (denial !== null) denials[denial[1] ?? ''] = Number(denial[2]);
  }
  return { lookups, dependencyErrors, denials };
}

/** after - before, per key, keeping only keys that moved. */
function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta !== 0) moved[key] = delta;
  }
  return moved;
}

function uniform(pool: readonly Prepared[]): Picker {
  return () => pool[Math.floor(Math.random() * pool.length)] as Prepared;
}

function cycle(pool: readonly Prepared[], offset: number): Picker {
  return (sequence) => pool[(sequence + offset) % pool.length] as Prepared;
}

function dedupe(requests: readonly PlayRequest[]): PlayRequest[] {
  const seen = new Map<string, PlayRequest>();
  for (const request of requests) seen.set(`${request.userId} ${request.body}`, request);
  return [...seen.values()];
}

// ---------------------------------------------------------------------------------------------
// Report

function printReport(
  rows: readonly Row[],
  sizes: typeof FULL_SIZES,
  timing: Timing,
  purchases: number,
  subscriptions: number,
  tokenCount: number,
  warmDistinct: number,
): void {
  const baselines = rows.filter((row) => row.kind === 'baseline' && row.https !== true);
  const httpsBaselines = rows.filter((row) => row.kind === 'baseline' && row.https === true);
  // Each scenario against the mean of the baseline runs just before and just after it.
  const reference = (row: Row): { rps: number; p99: number } => {
    const index = rows.indexOf(row);
    const before = rows.slice(0, index).findLast((other) => other.kind === 'baseline');
    const after = rows.slice(index + 1).find((other) => other.kind === 'baseline');
    const bracket = [before, after].filter((other) => other !== undefined);
    return { rps: mean(bracket.map((other) => other.load.requestsPerSecond)), p99: mean(bracket.map((other) => other.load.p99)) };
  };
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const out: string[] = [];
  out.push('');
  out.push(
    `st-api playback bench — ${availableParallelism()} cores (${cpu}), node ${process.version}, ${process.platform}/${process.arch}`,
  );
  out.push(
    `load: autocannon (in the bench process), ${CONNECTIONS} connections, pipelining 1; per scenario ${timing.warmupSeconds} s warm-up, then ${timing.measureSeconds} s measured`,
  );
  out.push(`servers: each its own process (node --import tsx api/main.ts, NODE_ENV=production); MariaDB and Redis on the same machine`);
  out.push(
    `data: ${sizes.contents} contents, ${sizes.users} users (${subscriptions} subscriptions, ${purchases} purchases), Zipf s=${ZIPF_S} over users and contents;`,
  );
  out.push(
    `      ${sizes.warmPool} warm draws (${warmDistinct} distinct requests, ${tokenCount} users/tokens), every request entitled (200 expected)`,
  );
  out.push(`baseline: Express hello-world in its own process, POST /v1/playback-urls with the same headers and bodies,`);
  out.push(`      express.json() + res.json(small fixed object); no auth, no I/O; run before each signer and at the end.`);
  out.push(`https: the same baseline (node:https) and st-api (listen.tls) with one ECDSA P-256 certificate, TLS 1.3, keep-alive;`);
  out.push(`      each https row against the two https baselines around it.`);
  out.push(`warm: cache flushed, every distinct request of the pool sent once, Zipf warm-up, then measured (hit ratios below).`);
  out.push(`cold: cache flushed after warm-up; content and rights TTL 1 s and each request a content not requested in the previous`);
  out.push(
    `      ${Math.min(sizes.coldPool, sizes.contents)} requests, so content and rights lookups miss Redis and read MariaDB; device-class lookups (4 keys) hit.`,
  );
  out.push(`      Redis is still on the path (GET miss, SET, rate-limit INCR).`);
  out.push('');
  const header = [
    'scenario',
    'req/s',
    '×base',
    `rps target`,
    'p50 ms',
    'p99 ms',
    '×base',
    `p99 ≤${TARGETS.p99Factor}×`,
    'non-2xx',
    'errors',
    'hit c/r/d %',
    'CPU % srv/db/redis/ab/other',
  ];
  const table: string[][] = [header];
  for (const row of rows) {
    const { load } = row;
    const { rps: baseRps, p99: baseP99 } = reference(row);
    const rpsRatio = load.requestsPerSecond / baseRps;
    const p99Ratio = load.p99 / baseP99;
    const target = row.kind === 'warm' ? TARGETS.warmRatio : TARGETS.coldRatio;
    const valid = load.non2xx === 0 && load.errors === 0;
    const verdict = (pass: boolean) => (valid ? (pass ? 'PASS' : 'MISS') : 'INVALID');
    table.push([
      row.name,
      load.requestsPerSecond.toFixed(0),
      row.kind === 'baseline' ? '' : rpsRatio.toFixed(2),
      row.kind === 'baseline' ? '' : `≥${target.toFixed(2)} ${verdict(rpsRatio >= target)}`,
      load.p50.toFixed(1),
      load.p99.toFixed(1),
      row.kind === 'baseline' ? '' : p99Ratio.toFixed(2),
      row.kind === 'baseline' ? '' : verdict(p99Ratio <= TARGETS.p99Factor),
      String(load.non2xx),
      String(load.errors),
      row.cache === undefined ? '' : ['content', 'rights', 'device_class'].map((kind) => percent(row.cache?.hitRatio[kind])).join('/'),
      ['server', 'mariadb', 'redis', 'autocannon', 'other']
        .map((name) => (load.cpu[name] === undefined ? '-' : load.cpu[name].toFixed(0)))
        .join('/'),
    ]);
  }
  out.push(...formatTable(table, new Set([0, 3, 7])));
  out.push('');
  for (const [label, runs] of [
    ['baseline', baselines],
    ['https baseline', httpsBaselines],
  ] as const) {
    if (runs.length === 0) continue;
    const spread = runs.map((row) => row.load.requestsPerSecond);
    out.push(
      `${label}: ${runs.length} runs, ${Math.min(...spread).toFixed(0)}-${Math.max(...spread).toFixed(0)} req/s, p99 ` +
        `${Math.min(...runs.map((row) => row.load.p99))}-${Math.max(...runs.map((row) => row.load.p99))} ms; each scenario's ×base uses the mean of the two baseline runs around it`,
    );
  }
  out.push(
    `CPU: % of one core over the measured window (${availableParallelism()} cores = ${availableParallelism() * 100} %); other = everything on the machine`,
  );
  out.push(`      that is not this bench (other processes, steal). A high "other" means the figures on that row are disturbed.`);
  out.push(
    `targets: warm ≥ ${TARGETS.warmRatio * 100} % and cold ≥ ${TARGETS.coldRatio * 100} % of baseline req/s; p99 ≤ ${TARGETS.p99Factor} × baseline p99 (applied to warm and cold rows)`,
  );
  const invalid = rows.filter((row) => row.load.non2xx > 0 || row.load.errors > 0);
  for (const row of invalid) {
    out.push(
      `INVALID ${row.name}: ${row.load.non2xx} non-2xx (${JSON.stringify(row.load.statusCounts)}), ${row.load.errors} errors (${row.load.timeouts} timeouts) — not a valid measurement`,
    );
  }
  for (const row of rows) {
    const failures = Object.entries(row.cache?.dependencyErrors ?? {});
    const denials = Object.entries(row.cache?.denials ?? {});
    if (failures.length > 0 || denials.length > 0) {
      const list = (entries: [string, number][]) =>
        entries.length === 0 ? 'none' : entries.map(([key, count]) => `${key} ${count}`).join(', ');
      out.push(
        `note ${row.name}: dependency errors/timeouts (st_api_dependency_errors_total): ${list(failures)}; denials: ${list(denials)}`,
      );
    }
  }
  const disturbed = rows.filter((row) => (row.load.cpu['other'] ?? 0) > DISTURBED_CPU_PERCENT);
  if (disturbed.length > 0) {
    out.push(
      `disturbed: other load above ${DISTURBED_CPU_PERCENT} % of a core during ${disturbed.map((row) => row.name).join(', ')}; rerun for a clean figure`,
    );
  }
  const misses = rows.filter((row) => {
    if (row.kind === 'baseline') return false;
    const target = row.kind === 'warm' ? TARGETS.warmRatio : TARGETS.coldRatio;
    const { rps, p99 } = reference(row);
    return row.load.requestsPerSecond / rps < target || row.load.p99 / p99 > TARGETS.p99Factor;
  });
  out.push(
    invalid.length > 0
      ? `result: ${invalid.length} invalid scenario(s)`
      : misses.length === 0
        ? 'result: every target met'
        : `result: ${misses.length} of ${rows.length - baselines.length - httpsBaselines.length} scenarios miss a target: ${misses.map((row) => row.name).join(', ')}`,
  );
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}

function printTls(
  handshakes: readonly { key: string; result: HandshakeResult }[],
  options: { seconds: number; concurrency: number; limit: number },
  protocols: { version: string | undefined; results: readonly ProtocolResult[] },
  timing: Timing,
): void {
  const out: string[] = [''];
  out.push(
    `TLS handshakes: new connections to st-api (${HTTPS_SIGNER} node, listen.tls), ${options.concurrency} at a time for ${options.seconds} s, each a full`,
  );
  out.push(`      handshake (no session resumption), closed once established; client does not verify the chain (as autocannon)`);
  const table: string[][] = [
    [
      'server key',
      'negotiated',
      'handshakes/s',
      'server CPU ms/handshake',
      'client CPU ms/handshake',
      'failures',
      'CPU % srv/client/other',
    ],
  ];
  for (const { key, result } of handshakes) {
    table.push([
      key,
      result.negotiated,
      result.perSecond.toFixed(0),
      result.serverCpuMs === undefined ? '-' : result.serverCpuMs.toFixed(2),
      result.clientCpuMs.toFixed(2),
      String(result.failures),
      ['server', 'client', 'other'].map((name) => (result.cpu[name] === undefined ? '-' : result.cpu[name].toFixed(0))).join('/'),
    ]);
  }
  out.push(...formatTable(table, new Set([0, 1])));
  out.push(`      server CPU per handshake is the figure to compare: handshakes/s is bounded by the client, on the same cores`);
  out.push('');
  if (protocols.results.length === 0) {
    out.push('HTTP/1.1 vs HTTP/2: not measured (h2load not installed; Debian: nghttp2-client)');
  } else {
    out.push(
      `HTTP/1.1 vs HTTP/2 over TLS (P-256): ${protocols.version?.split('\n')[0] ?? 'h2load'}, ${CONNECTIONS} connections, 1 request in flight each, ` +
        `${timing.warmupSeconds} s warm-up, ${timing.measureSeconds} s measured;`,
    );
    out.push(`      bench/protocol-server.ts: one plain handler (JSON body parsed, baseline's answer) behind node:https or node:http2`);
    const rows: string[][] = [['protocol', 'req/s', 'mean ms', 'server CPU ms/req', 'failed']];
    for (const result of protocols.results) {
      rows.push([
        result.protocol === 'h1' ? 'HTTP/1.1 (ALPN http/1.1)' : 'HTTP/2 (ALPN h2)',
        result.requestsPerSecond.toFixed(0),
        result.meanMs.toFixed(1),
        result.serverCpuMs === undefined ? '-' : result.serverCpuMs.toFixed(3),
        String(result.failed),
      ]);
    }
    out.push(...formatTable(rows, new Set([0])));
    const average = (protocol: 'h1' | 'h2') =>
      mean(protocols.results.filter((result) => result.protocol === protocol).map((result) => result.requestsPerSecond));
    out.push(`HTTP/2 / HTTP/1.1 req/s: ${(average('h2') / average('h1')).toFixed(2)}`);
  }
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}

function percent(ratio: number | undefined): string {
  return ratio === undefined || Number.isNaN(ratio) ? '-' : (ratio * 100).toFixed(0);
}

try {
  await main();
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  killAllChildrenNow();
  process.exitCode = 1;
}
