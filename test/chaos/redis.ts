// Redis master + two replicas, three Sentinels running the real hooks (the bundle production
// runs), and a reconcile timer per Redis host, registered in a Consul double the caller owns.
// test/sentinel-hooks/system.ts builds the same arrangement around a Consul double of its own
// that syncs every check output at once (check_update_interval 0); the whole system needs one
// double, with Consul's default interval, so that output-only changes do not fire the st-api
// watch several times a second.
import { createWriteStream, type WriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleHooks } from '../../sentinel-hooks/bundle.ts';
import { run } from '../../sentinel-hooks/cli.ts';
import type { ConsulDouble, NodeHandle } from '../doubles/consul/double.ts';
import { REPO_ROOT } from '../sentinel-hooks/system.ts';
import { sleep } from '../support/processes.ts';
import { startSentinelCluster, writeHookScript, type SentinelCluster } from '../support/sentinel.ts';

export const REDIS_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;
export const REDIS_MASTER_NAME = 'master.redis.service.consul';

export interface RedisWithHooks {
  readonly cluster: SentinelCluster;
  readonly hosts: readonly NodeHandle[];
  /** Stops the reconcile timers and every Redis and Sentinel the test bed started. */
  stop(): Promise<void>;
}

export async function startRedisWithHooks(consul: ConsulDouble, dir: string, reconcilePeriodMs: number): Promise<RedisWithHooks> {
  const entry = join(dir, 'sentinel-hooks.mjs');
  await bundleHooks(entry);
  const hosts: NodeHandle[] = [];
  for (const [i, ip] of REDIS_IPS.entries()) hosts.push(await consul.addNode(`redis-host-${i}`, ip));
  const configs: string[] = [];
  const cluster = await startSentinelCluster({
    ips: REDIS_IPS,
    hooks: async (i, layout) => {
      const config = join(dir, `redis-host-${i}.json`);
      configs[i] = config;
      // As test/sentinel-hooks/system.ts configures each host.
      await writeFile(config, JSON.stringify({
        masterName: 'mymaster',
        sentinels: layout.sentinelPorts.map((port) => ({ address: '127.0.0.1', port })),
        instances: [{ address: layout.ips[i], port: layout.redisPort }],
        reporter: `redis-host-${i}`,
        checkTtlSeconds: Math.max(3, Math.ceil((3 * reconcilePeriodMs) / 1000)),
        lockFile: join(dir, `redis-host-${i}.lock`),
        deadlineMs: 30_000,
        redisTimeoutMs: 500,
        consulTimeoutMs: 2000,
        lockWaitMs: 5000,
        convergeWaitMs: 5000,
        promotionWaitMs: 10_000,
        eventsKept: 20,
      }, null, 2));
      const env = { CONSUL_HTTP_ADDR: hosts[i]?.agentAddr ?? '', ST_SENTINEL_HOOKS_CONFIG: config };
      const clientReconfig = join(dir, `client-reconfig-${i}.sh`);
      const notification = join(dir, `notification-${i}.sh`);
      await writeHookScript(clientReconfig, { entry, repoRoot: REPO_ROOT, command: 'client-reconfig', env, logFile: join(dir, `hooks-${i}.log`) });
      await writeHookScript(notification, { entry, repoRoot: REPO_ROOT, command: 'notification', env, logFile: join(dir, `notify-${i}.log`), nice: 10 });
      return { clientReconfig, notification };
    },
  });

  // One reconcile timer per host, as systemd runs st-redis-reconcile.timer; in-process runs of the CLI.
  const logs: WriteStream[] = REDIS_IPS.map((_ip, i) => createWriteStream(join(dir, `redis-reconcile-${i}.log`), { flags: 'a' }));
  let stopped = false;
  const hostTimer = async (i: number): Promise<void> => {
    const log = logs[i];
    if (log === undefined) return;
    const env = { CONSUL_HTTP_ADDR: hosts[i]?.agentAddr ?? '', ST_SENTINEL_HOOKS_CONFIG: configs[i] ?? '' };
    for (let round = 0; round < 100_000 && !stopped; round++) {
      await run(['reconcile'], { stdout: log, stderr: log, env });
      for (let waited = 0; waited < reconcilePeriodMs && !stopped; waited += 50) await sleep(50);
    }
  };
  const timers = Promise.all(REDIS_IPS.map((_ip, i) => hostTimer(i)));

  return {
    cluster,
    hosts,
    async stop() {
      stopped = true;
      await timers;
      await cluster.stop();
      await Promise.all(logs.map((l) => new Promise<void>((resolve) => l.end(resolve))));
    },
  };
}
