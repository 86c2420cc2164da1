// The whole arrangement the hooks live in, for the failover tests and the timing script:
// the Consul double with one agent per Redis host, the Sentinel test bed whose Sentinels run
// the real hook executables, and an in-process reconcile timer per host.
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleHooks } from '../../sentinel-hooks/bundle.ts';
import { run } from '../../sentinel-hooks/cli.ts';
import type { ExitCode } from '../../sentinel-hooks/exit-codes.ts';
import { startConsulDouble, type ConsulDouble, type NodeHandle } from '../../doubles/consul/double.ts';
import { makeTempDir, sleep } from '../../testkit/processes.ts';
import { REDIS_HOST_IPS, startRedisHosts, type RedisHosts } from '../../testkit/redis-hosts.ts';
import type { RedisTlsFiles } from '../../testkit/redis.ts';
import type { SentinelCluster } from '../../testkit/sentinel.ts';
import { createTestCa } from '../../testkit/tls.ts';

export const REPO_ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

export interface Registration {
  readonly node: string;
  readonly address: string;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** The role check's status and output; '' when absent. */
  readonly status: string;
  readonly output: string;
  /** Worst of all checks (node + service): critical leaves DNS. */
  readonly health: string;
  readonly modifyIndex: number;
}

export interface HooksSystem {
  readonly consul: ConsulDouble;
  readonly cluster: SentinelCluster;
  readonly nodes: readonly NodeHandle[];
  readonly dir: string;
  readonly reconcilePeriodMs: number;
  /** Env for host i's hooks (its agent, its config). */
  env(i: number, overrides?: Readonly<Record<string, string>>): Record<string, string>;
  /** In-process run of the CLI as host i; logs go to dir/cli-i.log. */
  cli(i: number, argv: readonly string[], overrides?: Readonly<Record<string, string>>): Promise<ExitCode>;
  /** A records of master.redis.service.consul ([] on NXDOMAIN). */
  dnsMasters(): Promise<string[]>;
  registrations(): Promise<Registration[]>;
  hostOf(address: string): number;
  /** True while any Sentinel flags failover_in_progress (or does not answer). */
  failoverInProgress(): Promise<boolean>;
  startReconcileTimer(): void;
  stopReconcileTimer(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The hooks as production runs them: the one-file bundle of `npm run build` (sentinel-hooks/bundle.ts).
 * ST_SENTINEL_HOOKS_TSX=1 runs the sources through tsx instead (~0.8 s of CPU per hook: slow failovers).
 */
async function hooksEntry(dir: string): Promise<string> {
  if (process.env['ST_SENTINEL_HOOKS_TSX'] === '1') return join(REPO_ROOT, 'sentinel-hooks/main.ts');
  const outfile = join(dir, 'sentinel-hooks.mjs');
  await bundleHooks(outfile);
  return outfile;
}

/**
 * `consulTls`: every agent serves HTTPS with a certificate from a test CA, and every hook run reaches it over TLS.
 * `tls`: every Redis and Sentinel is TLS-only, and the hooks reach them over TLS.
 */
export async function startHooksSystem(
  options: { reconcilePeriodMs?: number; consulTls?: boolean; tls?: RedisTlsFiles } = {},
): Promise<HooksSystem> {
  const reconcilePeriodMs = options.reconcilePeriodMs ?? 2000;
  const dir = await makeTempDir('st-hooks');
  const entry = await hooksEntry(dir);
  const ca = options.consulTls === true ? createTestCa(dir) : undefined;
  const agentCert = ca?.server('consul-agent');
  const consul = await startConsulDouble({
    checkUpdateIntervalMs: 0,
    checkStagger: false,
    ...(agentCert === undefined
      ? {}
      : { tls: { cert: readFileSync(agentCert.certFile, 'utf8'), key: readFileSync(agentCert.keyFile, 'utf8') } }),
  });
  let hosts: RedisHosts;
  try {
    hosts = await startRedisHosts(consul, {
      dir,
      entry,
      reconcilePeriodMs,
      ...(ca === undefined ? {} : { consulCaFile: ca.caFile }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    });
  } catch (error) {
    await consul.stop();
    throw error;
  }
  const { cluster, nodes, configs } = hosts;
  const ips = REDIS_HOST_IPS;
  const logs: WriteStream[] = [];
  for (let i = 0; i < ips.length; i++) logs.push(createWriteStream(join(dir, `cli-${i}.log`), { flags: 'a' }));

  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${consul.dnsPort}`]);

  const env = (i: number, overrides: Readonly<Record<string, string>> = {}): Record<string, string> => ({
    // Over TLS each host's file names its agent's HTTPS address and the CA.
    CONSUL_HTTP_ADDR: ca === undefined ? (nodes[i]?.agentAddr ?? '') : '',
    ST_SENTINEL_HOOKS_CONFIG: configs[i] ?? '',
    ...overrides,
  });
  const cli = async (i: number, argv: readonly string[], overrides?: Readonly<Record<string, string>>): Promise<ExitCode> => {
    const log = logs[i];
    if (log === undefined) throw new Error(`no host ${i}`);
    return await run(argv, { stdout: log, stderr: log, env: env(i, overrides) });
  };

  let timer: Promise<void> | null = null;
  let timerStopped = false;

  const system: HooksSystem = {
    consul,
    cluster,
    nodes,
    dir,
    reconcilePeriodMs,
    env,
    cli,
    async dnsMasters() {
      try {
        return (await resolver.resolve4('master.redis.service.consul')).sort();
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOTFOUND') return [];
        throw error;
      }
    },
    async registrations() {
      const response = await fetch(`${consul.httpAddr}/v1/health/service/redis`);
      const entries = (await response.json()) as {
        Node: { Node: string };
        Service: { ID: string; Address: string; Tags: string[]; Meta: Record<string, string>; ModifyIndex: number };
        Checks: { CheckID: string; Status: string; Output: string }[];
      }[];
      return entries
        .map((e) => {
          const role = e.Checks.find((c) => c.CheckID.endsWith(':role'));
          const health = e.Checks.some((c) => c.Status === 'critical')
            ? 'critical'
            : e.Checks.some((c) => c.Status === 'warning')
              ? 'warning'
              : 'passing';
          return {
            node: e.Node.Node,
            address: e.Service.Address,
            tags: e.Service.Tags,
            meta: e.Service.Meta,
            status: role?.Status ?? '',
            output: role?.Output ?? '',
            health,
            modifyIndex: e.Service.ModifyIndex,
          };
        })
        .sort((a, b) => a.address.localeCompare(b.address));
    },
    async failoverInProgress() {
      const replies = await Promise.all(
        cluster.sentinels.map((_s, i) => cluster.sentinelCommand(i, ['SENTINEL', 'MASTER', cluster.masterName]).catch(() => null)),
      );
      return replies.some((r) => !Array.isArray(r) || String(r[r.indexOf('flags') + 1]).includes('failover_in_progress'));
    },
    hostOf(address) {
      const i = ips.indexOf(address.split(':')[0] ?? '');
      if (i < 0) throw new Error(`no host for ${address}`);
      return i;
    },
    startReconcileTimer() {
      if (timer !== null) return;
      timerStopped = false;
      // One timer per host, as systemd runs them: a slow run on one host never delays another's.
      // Bounded: stops with stopReconcileTimer(); each run is bounded by the CLI's deadline.
      const hostTimer = async (i: number): Promise<void> => {
        for (let round = 0; round < 100_000 && !timerStopped; round++) {
          await cli(i, ['reconcile']);
          for (let waited = 0; waited < reconcilePeriodMs && !timerStopped; waited += 50) await sleep(50);
        }
      };
      timer = Promise.all(ips.map((_ip, i) => hostTimer(i))).then(() => undefined);
    },
    async stopReconcileTimer() {
      timerStopped = true;
      await timer;
      timer = null;
    },
    async stop() {
      await system.stopReconcileTimer();
      await cluster.stop();
      await consul.stop();
      await Promise.all(logs.map((l) => new Promise<void>((resolve) => l.end(resolve))));
    },
  };
  return system;
}

/**
 * Polls `sample` every `intervalMs` until `done`; returns every sample with its time, the last one
 * done. Throws when `done` is not seen within `timeoutMs`: a caller never measures from a state
 * that was never reached.
 */
export async function sampleUntil<T>(
  sample: () => Promise<T>,
  done: (value: T) => boolean,
  options: { intervalMs: number; timeoutMs: number; what: string },
): Promise<{ at: number; value: T }[]> {
  const started = Date.now();
  const samples: { at: number; value: T }[] = [];
  for (let i = 0; i < 100_000; i++) {
    const value = await sample();
    samples.push({ at: Date.now(), value });
    if (done(value)) return samples;
    if (Date.now() - started > options.timeoutMs) break;
    await sleep(options.intervalMs);
  }
  throw new Error(
    `${options.what} not seen within ${options.timeoutMs} ms (${samples.length} samples; last: ${JSON.stringify(samples.at(-1)?.value)})`,
  );
}

/**
 * The longest run of consecutive samples for which `bad` holds, in ms from its first sample to the
 * first sample after it; a run still open at the last sample counts to that sample (at least as long).
 */
export function longestStretch<T>(samples: readonly { at: number; value: T }[], bad: (value: T) => boolean): number {
  let longest = 0;
  let since: number | null = null;
  for (const s of samples) {
    if (bad(s.value)) since ??= s.at;
    else if (since !== null) {
      longest = Math.max(longest, s.at - since);
      since = null;
    }
  }
  const last = samples.at(-1);
  if (since !== null && last !== undefined) longest = Math.max(longest, last.at - since);
  return longest;
}
