// Steps every bench module takes around a measured window: wait for a server to be healthy, wait
// for the machine to be quiet, start the baseline, keep track of the servers it started.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { startNodeServer, type NodeServer } from '../testkit/node-server.ts';
import { machineBusy, runLoad, type LoadResult, type Picker } from './load.ts';

/** Before a measured window: wait up to this long for the machine's other load to drop under this share of one core. */
const QUIET_WAIT_MS = 20_000;
const QUIET_CPU_PERCENT = 25;
/** A measured window where other load on the machine used more than this is flagged in the report. */
export const DISTURBED_CPU_PERCENT = 50;

export const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** PEM files of a serving certificate: the HTTPS baseline and st-api's listen.tls use the same ones. */
export interface ServingFiles {
  certFile: string;
  keyFile: string;
}

export async function baselineServer(tls?: ServingFiles): Promise<NodeServer> {
  const server = await startNodeServer({
    name: tls === undefined ? 'baseline' : 'baseline (https)',
    script: join('bench', 'baseline-server.ts'),
    env: {
      ...process.env,
      NODE_ENV: 'production',
      ...(tls === undefined ? {} : { BASELINE_TLS_CERT: tls.certFile, BASELINE_TLS_KEY: tls.keyFile }),
    },
    listeningMessage: 'baseline listening',
  });
  return tls === undefined ? server : overHttps(server);
}

/** The same server, addressed by https:// (testkit's launcher names every server http://). */
export function overHttps(server: NodeServer): NodeServer {
  return {
    name: server.name,
    pid: server.pid,
    baseUrl: server.baseUrl.replace(/^http:/, 'https:'),
    stop: (timeoutMs) => server.stop(timeoutMs),
    outputTail: () => server.outputTail(),
  };
}

let trustedCa: string | undefined;

/** The test CA that `request` trusts for https:// URLs (Node 20's fetch takes no CA per call). */
export function trustCa(pem: string): void {
  trustedCa = pem;
}

/** What the bench asks its servers outside the load: one request, its status and text, over http or https. */
export function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs: number },
): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = send(
      target,
      {
        method: init.method ?? 'GET',
        headers: init.headers,
        agent: false,
        timeout: init.timeoutMs,
        ...(target.protocol === 'https:' && trustedCa !== undefined ? { ca: trustedCa } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${url}: no answer within ${init.timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(init.body);
  });
}

export async function track(servers: Set<NodeServer>, starting: Promise<NodeServer>): Promise<NodeServer> {
  const server = await starting;
  servers.add(server);
  return server;
}

export async function untrack(servers: Set<NodeServer>, server: NodeServer): Promise<void> {
  await server.stop();
  servers.delete(server);
}

/**
 * This machine may be shared (other builds and test runs). Before each measured window, wait
 * (at most QUIET_WAIT_MS) until the machine is nearly idle while the bench itself is idle; the
 * "other" CPU column then shows what still ran during the window.
 */
export async function quietMachine(watch: Record<string, number>): Promise<void> {
  const deadline = performance.now() + QUIET_WAIT_MS;
  let busy = await machineBusy(watch, 500);
  if (busy === undefined || busy <= QUIET_CPU_PERCENT) return;
  const started = performance.now();
  while (busy !== undefined && busy > QUIET_CPU_PERCENT && performance.now() < deadline) busy = await machineBusy(watch, 500);
  log(
    `waited ${((performance.now() - started) / 1000).toFixed(1)} s for other load on the machine to drop (now ${busy?.toFixed(0) ?? '?'} % of a core)`,
  );
}

export async function waitReady(server: NodeServer): Promise<void> {
  const deadline = performance.now() + 15_000;
  let last = '';
  while (performance.now() < deadline) {
    try {
      const response = await request(`${server.baseUrl}/health/deep`, { timeoutMs: 2000 });
      last = `${response.status} ${response.text}`;
      if (response.status === 200) return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`${server.name} not healthy within 15 s: ${last}\n${server.outputTail()}`);
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

/** Rows as aligned columns; `left` names the columns padded on the right (text), the rest are numbers. */
export function formatTable(table: readonly (readonly string[])[], left: ReadonlySet<number>): string[] {
  const header = table[0] ?? [];
  const widths = header.map((_, column) => Math.max(...table.map((cells) => (cells[column] ?? '').length)));
  const out: string[] = [];
  for (const [index, cells] of table.entries()) {
    out.push(
      cells.map((cell, column) => (left.has(column) ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '),
    );
    if (index === 0) out.push(widths.map((width) => '-'.repeat(width)).join('  '));
  }
  return out;
}

/** One run of the Express baseline, as every bench module takes it: warm-up, a quiet machine, the measured window. */
export async function measureBaseline(
  server: NodeServer,
  pick: Picker,
  options: { connections: number; timing: { warmupSeconds: number; measureSeconds: number }; watch: Record<string, number> },
): Promise<LoadResult> {
  const base = { baseUrl: server.baseUrl, connections: options.connections, pick };
  await runLoad({ ...base, durationSeconds: options.timing.warmupSeconds });
  await quietMachine(options.watch);
  return runLoad({ ...base, durationSeconds: options.timing.measureSeconds, watch: options.watch });
}

/**
 * Starts the Express baseline, measures it (measureBaseline) and stops it: the run every bench module
 * brackets its scenarios with. `check` runs first on the started server; `watch` names what to watch.
 */
export async function baselineRun(
  servers: Set<NodeServer>,
  name: string,
  pick: Picker,
  options: {
    connections: number;
    timing: { warmupSeconds: number; measureSeconds: number };
    watch: (server: NodeServer) => Record<string, number>;
    check?: (server: NodeServer) => Promise<void>;
    /** Serve HTTPS with this certificate. */
    tls?: ServingFiles;
  },
): Promise<LoadResult> {
  const server = await track(servers, baselineServer(options.tls));
  try {
    await options.check?.(server);
    const load = await measureBaseline(server, pick, {
      connections: options.connections,
      timing: options.timing,
      watch: options.watch(server),
    });
    log(`${name}: ${load.requestsPerSecond.toFixed(0)} req/s`);
    return load;
  } finally {
    await untrack(servers, server);
  }
}
