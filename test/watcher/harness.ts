// End-to-end harness for the watcher: real st-api nodes (in-process, on loopback) checked by the
// Consul double, the real watcher CLI run by the double's watch runner or directly, and the
// Route53 double behind the real AWS SDK.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { ResourceRecordSet } from '@aws-sdk/client-route-53';
import { run } from '../../watcher/cli.ts';
import { nodeOf } from '../../watcher/plan/plan.ts';
import { startConsulDouble, type ConsulDouble, type ConsulDoubleOptions } from '../../doubles/consul/double.ts';
import { startRoute53Double, type Route53Double } from '../../doubles/route53/server.ts';
import { waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

export const REPO = join(import.meta.dirname, '..', '..');
export const RECORD = 'play.example.com.';
export const WATCHER = [process.execPath, '--import', 'tsx', join(REPO, 'watcher', 'main.ts')];

export interface WatcherWorld {
  consul: ConsulDouble;
  route53: Route53Double;
  zoneId: string;
  configFile: string;
  /** Environment a handler or an operator runs the watcher with. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startWatcherWorld(
  config: Record<string, unknown> = {},
  route53Options: Parameters<typeof startRoute53Double>[0] = {},
  consulOptions: ConsulDoubleOptions = {},
): Promise<WatcherWorld> {
  const consul = await startConsulDouble({
    checkStagger: false,
    checkUpdateIntervalMs: 0,
    watchQueryWaitMs: 2000,
    watchErrorBackoffScale: 0.01,
    ...consulOptions,
  });
  const route53 = await startRoute53Double({ insyncDelayMs: 100, ...route53Options });
  const zoneId = route53.createZone('example.com');
  const dir = mkdtempSync(join(tmpdir(), 'st-watcher-'));
  const configFile = join(dir, 'dns-watcher.json');
  // Test nodes listen on loopback addresses, and the clients of these tests connect to what DNS says.
  writeFileSync(
    configFile,
    JSON.stringify({ recordName: 'play.example.com', zoneId, minHealthy: 2, lockWaitMs: 20_000, publishLoopback: true, ...config }),
  );
  const env = {
    ST_DNS_CONFIG: configFile,
    CONSUL_HTTP_ADDR: consul.httpAddr,
    AWS_ENDPOINT_URL_ROUTE_53: route53.endpoint,
    AWS_ACCESS_KEY_ID: 'AKIDWATCHERTEST',
    AWS_SECRET_ACCESS_KEY: 'not-a-secret',
    AWS_REGION: 'us-east-1',
    ST_DNS_LOG_LEVEL: 'info',
  };
  return {
    consul,
    route53,
    zoneId,
    configFile,
    env,
    async stop() {
      await consul.stop();
      await route53.stop();
    },
  };
}

/** Registers an st-api node with the Consul agent of its node, with the HTTP check on /health/deep. */
export async function registerApiNode(world: WatcherWorld, name: string, address: string, node: TestNode): Promise<void> {
  // A node that comes back keeps its Consul node (and agent); only the service is registered again.
  let handle: ReturnType<ConsulDouble['node']>;
  try {
    handle = world.consul.node(name);
  } catch {
    handle = await world.consul.addNode(name, address);
  }
  const response = await fetch(`${handle.agentAddr}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      Name: 'st-api',
      ID: 'st-api',
      Address: address,
      Port: Number(new URL(node.baseUrl).port),
      Check: {
        CheckID: 'st-api:deep-health',
        Name: 'st-api deep health',
        HTTP: `${node.baseUrl}/health/deep`,
        Interval: '200ms',
        Timeout: '1s',
      },
    }),
  });
  if (!response.ok) throw new Error(`register ${name}: ${response.status} ${await response.text()}`);
}

/** The owned A records under the record name: node → value. */
export function publishedNodes(world: WatcherWorld): Map<string, string> {
  const published = new Map<string, string>();
  for (const set of world.route53.records(world.zoneId) as ResourceRecordSet[]) {
    if (set.Name !== RECORD || set.Type !== 'A' || set.SetIdentifier?.startsWith('st-api/') !== true) continue;
    published.set(nodeOf('st-api', { setIdentifier: set.SetIdentifier }), set.ResourceRecords?.[0]?.Value ?? '');
  }
  return published;
}

export async function waitForPublished(world: WatcherWorld, expected: string[], what: string, timeoutMs = 20_000): Promise<void> {
  const want = [...expected].sort().join(',');
  await waitFor(() => [...publishedNodes(world).keys()].sort().join(',') === want || undefined, {
    timeoutMs,
    intervalMs: 100,
    what: `${what}: DNS = [${want}]`,
  });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the watcher CLI in-process (the same run() the executable calls). The AWS SDK reads its
 * endpoint and credentials from process.env, so the world's environment is applied to it too.
 */
export async function watcherCli(
  world: WatcherWorld,
  argv: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const env = { ...world.env, ...options.env };
  Object.assign(process.env, env);
  const stdin = new PassThrough();
  stdin.end(options.stdin ?? '');
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await run(argv, { stdin, stdout, stderr, env: { ...process.env, ...env } });
  return { code, stdout: out, stderr: err };
}

/**
 * Starts the watcher executable as a separate process, as Consul or an operator would; `done` settles
 * when it exits (SIGKILLed after `timeoutMs`: no run may take that long).
 */
export function spawnWatcher(
  world: WatcherWorld,
  argv: string[],
  options: { stdin?: string; env?: Record<string, string>; timeoutMs: number },
): { child: ChildProcessWithoutNullStreams; done: Promise<CliResult & { signal: NodeJS.Signals | null }>; running: () => boolean } {
  const child = spawn(WATCHER[0] ?? process.execPath, [...WATCHER.slice(1), ...argv], {
    env: { ...process.env, ...world.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  });
  child.stdin.end(options.stdin ?? '');
  return { child, done, running: () => !exited };
}

/** Runs the watcher executable as a separate process to its end (at most a minute). */
export async function watcherProcess(
  world: WatcherWorld,
  argv: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await spawnWatcher(world, argv, { ...options, timeoutMs: 60_000 }).done;
  return { code, stdout, stderr };
}

/** Starts an st-api node for each name into `nodes`, registered in Consul at `<addressPrefix><its last character>`. */
export async function addApiNodes(
  world: WatcherWorld,
  nodes: Map<string, TestNode>,
  names: readonly string[],
  addressPrefix: string,
): Promise<void> {
  for (const name of names) {
    const node = await startTestNode();
    nodes.set(name, node);
    await registerApiNode(world, name, `${addressPrefix}${name.slice(-1)}`, node);
  }
}

/** GET /v1/health/service/st-api as the agent would hand it over, with the index it carries. */
export async function healthSnapshot(world: WatcherWorld): Promise<{ stdin: string; index: string }> {
  const response = await fetch(`${world.consul.httpAddr}/v1/health/service/st-api`);
  return { stdin: await response.text(), index: response.headers.get('x-consul-index') ?? '0' };
}

/** The st-api checks of `node` in Consul's health answer; undefined when the node is not in it. */
export async function stApiChecks(world: WatcherWorld, node: string): Promise<{ Status: string; ServiceID: string }[] | undefined> {
  const entries = (await (await fetch(`${world.consul.httpAddr}/v1/health/service/st-api`)).json()) as {
    Node: { Node: string };
    Checks: { Status: string; ServiceID: string }[];
  }[];
  return entries.find((candidate) => candidate.Node.Node === node)?.Checks.filter((check) => check.ServiceID === 'st-api');
}

/** Stops the world, then every node in `nodes`. */
export async function stopWorldAndNodes(world: WatcherWorld, nodes: ReadonlyMap<string, TestNode>): Promise<void> {
  await world.stop();
  await Promise.all([...nodes.values()].map((node) => node.close()));
}

/** Another configuration file for this world: its own keys with some changed (pass it with --config). */
export function configFileWith(world: WatcherWorld, overrides: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'st-watcher-')), 'dns-watcher.json');
  writeFileSync(file, JSON.stringify({ ...(JSON.parse(readFileSync(world.configFile, 'utf8')) as Record<string, unknown>), ...overrides }));
  return file;
}

export async function kvGet(world: WatcherWorld, key: string): Promise<string | undefined> {
  const response = await fetch(`${world.consul.httpAddr}/v1/kv/${key}?raw`);
  return response.status === 404 ? undefined : response.text();
}

export async function kvPut(world: WatcherWorld, key: string, value: string): Promise<void> {
  await fetch(`${world.consul.httpAddr}/v1/kv/${key}`, { method: 'PUT', body: value });
}
