// Redis master + two replicas, three Sentinels running the real hooks (the bundle production
// runs), and a reconcile timer per Redis host, registered in a Consul double the caller owns:
// the whole system needs one double, with Consul's default check_update_interval, so that
// output-only changes do not fire the st-api watch several times a second. The hosts are the
// ones the hooks' failover tests use (testkit/redis-hosts.ts).
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { bundleHooks } from '../../sentinel-hooks/bundle.ts';
import { run } from '../../sentinel-hooks/cli.ts';
import type { ConsulDouble, NodeHandle } from '../../doubles/consul/double.ts';
import { sleep } from '../processes.ts';
import { REDIS_HOST_IPS, startRedisHosts } from '../redis-hosts.ts';
import type { SentinelCluster } from '../sentinel.ts';

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
  const { cluster, nodes: hosts, configs } = await startRedisHosts(consul, { dir, entry, reconcilePeriodMs });

  // One reconcile timer per host, as systemd runs st-redis-reconcile.timer; in-process runs of the CLI.
  const logs: WriteStream[] = REDIS_HOST_IPS.map((_ip, i) => createWriteStream(join(dir, `redis-reconcile-${i}.log`), { flags: 'a' }));
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
  const timers = Promise.all(REDIS_HOST_IPS.map((_ip, i) => hostTimer(i)));

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
