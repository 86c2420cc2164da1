// `npx tsx bench/hooks-redis-client.bench.ts [runs] [starts]`: what the hooks' Redis client costs a
// hook run, sentinel-hooks/resp.ts against ioredis (the API's client), in the same run on the same
// throwaway redis-server (testkit, loopback, requirepass set so every connection sends AUTH).
//
// (a) The Redis work of a hook run, in process: what readTruth sends, one connection per question
//     (AUTH + ROLE, then the socket is closed; resp.ts sends no QUIT, and neither does the ioredis
//     variant: disconnect()). One "connection" is one question; one "reading" is a reconcile tick's
//     or one client-reconfig poll's: four at once (ROLE of the local instance and the master's
//     address from three Sentinels; here four ROLEs, the same bytes on the wire give or take a word).
//     Wall time and this process's CPU (process.cpuUsage) per operation, medians over `runs`
//     (default 400), the two clients interleaved (ABAB, then BABA) so the machine's load falls on both.
// (b) Start: Sentinel starts a process per hook call. Entries are bundled the way the hooks are
//     (sentinel-hooks/bundle.ts bundleProgram) and run as `node bundle.mjs` `starts` times (default
//     40) each, interleaved: wall time to exit and the child's own CPU (its process.cpuUsage as it
//     exits, printed by a --require'd file, so Node's start-up is included), medians; and the bundle's
//     size. Entries: nothing (Node alone); AUTH + ROLE with each client; the same with resp.ts over
//     TLS (a second, TLS-only redis-server; the CA file read and the certificate checked, as a hook
//     configured with tls does); the hooks as shipped (main.ts --help); the same with ioredis loaded
//     first, i.e. what replacing resp.ts adds. (a) also gets resp.ts's one connection over TLS.
//
// The ioredis options are those a hook would need: the API's (no reconnect, no offline queue, no
// retries, connect and command timeouts) plus lazyConnect, no ready check (a LOADING instance must
// answer ROLE with its error, not be waited for) and no CLIENT SETINFO (two commands per connection
// the hooks do not need).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { bundleProgram } from '../sentinel-hooks/bundle.ts';
import { command, ReplyError } from '../sentinel-hooks/resp.ts';
import { readFileSync } from 'node:fs';
import { startRedis, type RedisServer } from '../testkit/redis.ts';
import { createTestCa } from '../testkit/tls.ts';

const REPO = join(import.meta.dirname, '..');
const RUNS = Number(process.argv[2] ?? 400);
const STARTS = Number(process.argv[3] ?? 40);
const WARMUP = 20;
const PASSWORD = 'bench-hooks-secret';
const TIMEOUT_MS = 1000;
/** What one hook reading asks at once: ROLE of the local instance and three Sentinels. */
const READING_WIDTH = 4;

type Variant = 'resp.ts' | 'ioredis';

async function roleWithResp(port: number): Promise<void> {
  const reply = await command('127.0.0.1', port, ['ROLE'], { timeoutMs: TIMEOUT_MS, auth: { password: PASSWORD } });
  if (reply instanceof ReplyError || !Array.isArray(reply) || reply[0] !== 'master')
    throw new Error(`resp.ts: ROLE answered ${String(reply)}`);
}

async function roleWithIoredis(port: number): Promise<void> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    password: PASSWORD,
    connectTimeout: TIMEOUT_MS,
    commandTimeout: TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
    enableReadyCheck: false,
    disableClientInfo: true,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const reply = (await redis.call('ROLE')) as unknown[];
    if (reply[0] !== 'master') throw new Error(`ioredis: ROLE answered ${String(reply[0])}`);
  } finally {
    redis.disconnect();
  }
}

const ASK: Record<Variant, (port: number) => Promise<void>> = { 'resp.ts': roleWithResp, ioredis: roleWithIoredis };

/** Wall ms and this process's CPU ms of one call of `work`. */
async function measure(work: () => Promise<unknown>): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Samples {
  wallMs: number[];
  cpuMs: number[];
}

const emptySamples = (): Record<Variant, Samples> => ({ 'resp.ts': { wallMs: [], cpuMs: [] }, ioredis: { wallMs: [], cpuMs: [] } });

/** `runs` measured calls of `operation` per variant, after a warm-up, interleaved ABAB then BABA. */
async function compare(runs: number, operation: (variant: Variant) => Promise<unknown>): Promise<Record<Variant, Samples>> {
  for (let i = 0; i < WARMUP; i++) for (const variant of ['resp.ts', 'ioredis'] as const) await operation(variant);
  const samples = emptySamples();
  for (let i = 0; i < runs; i++) {
    const order: Variant[] = i % 2 === 0 ? ['resp.ts', 'ioredis'] : ['ioredis', 'resp.ts'];
    for (const variant of order) {
      const { wallMs, cpuMs } = await measure(() => operation(variant));
      samples[variant].wallMs.push(wallMs);
      samples[variant].cpuMs.push(cpuMs);
    }
  }
  return samples;
}

// (b): entries bundled the way the hooks are, in a temporary directory (removed at the end), importing
// the repository's files and its ioredis by absolute path.
const ENTRY_DIR = mkdtempSync(join(tmpdir(), 'st-bench-hooks-redis-'));
const RESP_MODULE = join(REPO, 'sentinel-hooks', 'resp.ts');
const IOREDIS_MODULE = createRequire(import.meta.url).resolve('ioredis');
const HOOKS_MAIN = join(REPO, 'sentinel-hooks', 'main.ts');
const ENTRIES: Record<'none' | Variant | 'resp.ts TLS' | 'hooks + ioredis', string> = {
  none: `export {};
`,
  'resp.ts': `import { command } from ${JSON.stringify(RESP_MODULE)};
const [, , port, password] = process.argv;
const reply = await command('127.0.0.1', Number(port), ['ROLE'], { timeoutMs: ${TIMEOUT_MS}, auth: { password: password ?? '' } });
if (!Array.isArray(reply) || reply[0] !== 'master') throw new Error('ROLE answered ' + String(reply));
`,
  'resp.ts TLS': `import { readFileSync } from 'node:fs';
import { command } from ${JSON.stringify(RESP_MODULE)};
const [, , port, password, caFile] = process.argv;
const reply = await command('127.0.0.1', Number(port), ['ROLE'], { timeoutMs: ${TIMEOUT_MS}, auth: { password: password ?? '' },
  tls: { ca: readFileSync(caFile ?? '', 'utf8'), servername: 'localhost' } });
if (!Array.isArray(reply) || reply[0] !== 'master') throw new Error('ROLE answered ' + String(reply));
`,
  ioredis: `import { Redis } from ${JSON.stringify(IOREDIS_MODULE)};
const [, , port, password] = process.argv;
const redis = new Redis({ host: '127.0.0.1', port: Number(port), password, connectTimeout: ${TIMEOUT_MS}, commandTimeout: ${TIMEOUT_MS},
  enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true, enableReadyCheck: false, disableClientInfo: true });
redis.on('error', () => undefined);
await redis.connect();
const reply = (await redis.call('ROLE')) as unknown[];
redis.disconnect();
if (reply[0] !== 'master') throw new Error('ROLE answered ' + String(reply[0]));
`,
  // The hooks as they ship, with ioredis's module graph loaded first: what the switch adds to every
  // hook's start before it sends anything (run with --help, which loads everything and exits).
  'hooks + ioredis': `import ${JSON.stringify(IOREDIS_MODULE)};
import ${JSON.stringify(HOOKS_MAIN)};
`,
};

const run = promisify(execFile);

/** Loaded before the bundle: the child's own CPU (start-up included) on stderr as it exits, whatever way it exits. */
const PRINT_CPU = join(ENTRY_DIR, 'print-cpu.cjs');

async function startOnce(bundle: string, args: readonly string[]): Promise<{ wallMs: number; cpuMs: number }> {
  const started = performance.now();
  const { stderr } = await run(process.execPath, ['--require', PRINT_CPU, bundle, ...args], { timeout: 30_000 });
  const wallMs = performance.now() - started;
  const used = JSON.parse(stderr.trim().split('\n').at(-1) ?? '') as { user: number; system: number };
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

const fmt = (ms: number): string => ms.toFixed(ms < 10 ? 2 : 1).padStart(8);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

let redis: RedisServer | undefined;
let tlsRedis: RedisServer | undefined;
try {
  const started = await startRedis();
  redis = started;
  const ca = createTestCa(ENTRY_DIR);
  const tlsServer = await startRedis({ tls: { caFile: ca.caFile, ...ca.server('bench-redis') } });
  tlsRedis = tlsServer;
  const tlsOptions = { ca: readFileSync(ca.caFile, 'utf8'), servername: 'localhost' };
  const tlsSet = await command('127.0.0.1', tlsServer.port, ['CONFIG', 'SET', 'requirepass', PASSWORD], {
    timeoutMs: TIMEOUT_MS,
    tls: tlsOptions,
  });
  if (tlsSet !== 'OK') throw new Error(`CONFIG SET requirepass (TLS) answered ${String(tlsSet)}`);
  // Set after start: the launcher's readiness PING sends no AUTH.
  const set = await command('127.0.0.1', started.port, ['CONFIG', 'SET', 'requirepass', PASSWORD], { timeoutMs: TIMEOUT_MS });
  if (set !== 'OK') throw new Error(`CONFIG SET requirepass answered ${String(set)}`);
  const loadBefore = load();
  process.stdout.write(
    `hooks Redis client: resp.ts against ioredis ${(createRequire(import.meta.url)('ioredis/package.json') as { version: string }).version}, ` +
      `Node ${process.version}, redis-server on 127.0.0.1:${started.port} with requirepass; load average ${loadBefore}\n\n`,
  );

  const connection = await compare(RUNS, (variant) => ASK[variant](started.port));
  const reading = await compare(RUNS, (variant) => Promise.all(Array.from({ length: READING_WIDTH }, () => ASK[variant](started.port))));
  const roleOverTls = (): Promise<unknown> =>
    command('127.0.0.1', tlsServer.port, ['ROLE'], { timeoutMs: TIMEOUT_MS, auth: { password: PASSWORD }, tls: tlsOptions });
  for (let i = 0; i < WARMUP; i++) await roleOverTls();
  const overTls: Samples = { wallMs: [], cpuMs: [] };
  for (let i = 0; i < RUNS; i++) {
    const { wallMs, cpuMs } = await measure(roleOverTls);
    overTls.wallMs.push(wallMs);
    overTls.cpuMs.push(cpuMs);
  }

  writeFileSync(PRINT_CPU, "process.on('exit', () => require('node:fs').writeSync(2, '\\n' + JSON.stringify(process.cpuUsage())));\n");
  type Start = keyof typeof ENTRIES | 'hooks';
  const bundles = {} as Record<Start, { file: string; bytes: number; args: string[] }>;
  for (const [name, source] of Object.entries(ENTRIES) as [keyof typeof ENTRIES, string][]) {
    const base = name.replace(/[^a-z]+/g, '-');
    writeFileSync(join(ENTRY_DIR, `entry-${base}.ts`), source);
    const file = join(ENTRY_DIR, `bundle-${base}.mjs`);
    await bundleProgram(relative(REPO, join(ENTRY_DIR, `entry-${base}.ts`)), file);
    const args =
      name === 'hooks + ioredis'
        ? ['--help']
        : name === 'resp.ts TLS'
          ? [String(tlsServer.port), PASSWORD, ca.caFile]
          : [String(started.port), PASSWORD];
    bundles[name] = { file, bytes: statSync(file).size, args };
  }
  const hooksFile = join(ENTRY_DIR, 'sentinel-hooks.mjs');
  await bundleProgram('sentinel-hooks/main.ts', hooksFile);
  bundles.hooks = { file: hooksFile, bytes: statSync(hooksFile).size, args: ['--help'] };
  const names: Start[] = ['none', 'resp.ts', 'resp.ts TLS', 'ioredis', 'hooks', 'hooks + ioredis'];
  const starts = Object.fromEntries(names.map((name) => [name, { wallMs: [], cpuMs: [] }])) as unknown as Record<Start, Samples>;
  for (const name of names) await startOnce(bundles[name].file, bundles[name].args); // page cache warm for all
  for (let i = 0; i < STARTS; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const { wallMs, cpuMs } = await startOnce(bundles[name].file, bundles[name].args);
      starts[name].wallMs.push(wallMs);
      starts[name].cpuMs.push(cpuMs);
    }
  }

  const row = (label: string, s: Samples): string =>
    `${label.padEnd(44)}${fmt(median(s.wallMs))}${fmt(percentile(s.wallMs, 90))}${fmt(median(s.cpuMs))}${fmt(percentile(s.cpuMs, 90))}\n`;
  const header = `${''.padEnd(44)}${'wall ms'.padStart(8)}${'p90'.padStart(8)}${'CPU ms'.padStart(8)}${'p90'.padStart(8)}\n`;
  process.stdout.write(`(a) in process, medians of ${RUNS} after ${WARMUP} warm-up\n${header}`);
  for (const variant of ['resp.ts', 'ioredis'] as const) {
    process.stdout.write(row(`one connection (AUTH, ROLE, close), ${variant}`, connection[variant]));
  }
  process.stdout.write(row('one connection over TLS (handshake), resp.ts', overTls));
  for (const variant of ['resp.ts', 'ioredis'] as const) {
    process.stdout.write(row(`one reading (${READING_WIDTH} at once), ${variant}`, reading[variant]));
  }
  process.stdout.write(`\n(b) node bundle.mjs, medians of ${STARTS}\n${header.trimEnd()}${'bytes'.padStart(10)}\n`);
  const labels: Record<Start, string> = {
    none: 'empty entry (Node alone)',
    'resp.ts': 'resp.ts: AUTH + ROLE, exit',
    'resp.ts TLS': 'resp.ts over TLS: AUTH + ROLE, exit',
    ioredis: 'ioredis: AUTH + ROLE, exit',
    hooks: 'the hooks today (main.ts --help)',
    'hooks + ioredis': 'the hooks + ioredis loaded (--help)',
  };
  for (const name of names) {
    process.stdout.write(`${row(labels[name], starts[name]).trimEnd()}${String(bundles[name].bytes).padStart(10)}\n`);
  }
  process.stdout.write(`\nload average before ${loadBefore}, after ${load()}\n`);
} finally {
  await redis?.stop();
  await tlsRedis?.stop();
  rmSync(ENTRY_DIR, { recursive: true, force: true });
}
