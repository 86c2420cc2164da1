// The Redis hosts as production lays them out: master + two replicas on three loopback addresses,
// three Sentinels running the hooks, each host registered in Consul through its own agent. Used by
// the hooks' failover tests and by the chaos suite.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConsulDouble, NodeHandle } from '../doubles/consul/double.ts';
import { REPO_ROOT } from './node-server.ts';
import type { RedisTlsFiles } from './redis.ts';
import { startSentinelCluster, writeHookScript, type SentinelCluster } from './sentinel.ts';

export const REDIS_HOST_IPS: readonly string[] = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

export interface RedisHosts {
  readonly cluster: SentinelCluster;
  /** The Consul agent of each Redis host (redis-host-<i>). */
  readonly nodes: readonly NodeHandle[];
  /** The hooks' configuration file of each host. */
  readonly configs: readonly string[];
}

/**
 * Redis master + two replicas and three Sentinels running the hooks (`entry`), each host with its
 * own agent in `consul` (the caller's double) and its own hooks configuration in `dir`.
 */
export async function startRedisHosts(
  consul: ConsulDouble,
  options: {
    dir: string;
    entry: string;
    reconcilePeriodMs: number;
    /** The agents serve HTTPS (the double's `tls`): the hooks reach them by the file's consulAddress and consulCaFile. */
    consulCaFile?: string;
    /** Every Redis and Sentinel is TLS-only. */
    tls?: RedisTlsFiles;
  },
): Promise<RedisHosts> {
  const { dir, entry, reconcilePeriodMs, consulCaFile, tls } = options;
  const nodes: NodeHandle[] = [];
  const configs: string[] = [];
  for (const [i, ip] of REDIS_HOST_IPS.entries()) nodes.push(await consul.addNode(`redis-host-${i}`, ip));
  const cluster = await startSentinelCluster({
    ips: REDIS_HOST_IPS,
    ...(tls === undefined ? {} : { tls }),
    hooks: async (i, layout) => {
      const config = join(dir, `host-${i}.json`);
      configs[i] = config;
      await writeFile(
        config,
        JSON.stringify(
          {
            masterName: 'mymaster',
            sentinels: layout.sentinelPorts.map((port) => ({ address: '127.0.0.1', port })),
            instances: [{ address: layout.ips[i], port: layout.redisPort }],
            reporter: `redis-host-${i}`,
            checkTtlSeconds: Math.max(3, Math.ceil((3 * reconcilePeriodMs) / 1000)),
            lockFile: join(dir, `host-${i}.lock`),
            deadlineMs: 30_000,
            redisTimeoutMs: 500,
            consulTimeoutMs: 2000,
            lockWaitMs: 5000,
            convergeWaitMs: 5000,
            promotionWaitMs: 10_000,
            eventsKept: 20,
            ...(consulCaFile === undefined ? {} : { consulAddress: nodes[i]?.httpsAddr, consulCaFile }),
            // The hooks check the name the certificates carry: Sentinel hands them addresses.
            ...(tls === undefined
              ? {}
              : { tls: { ca: tls.caFile, ...(tls.servername === undefined ? {} : { servername: tls.servername }) } }),
          },
          null,
          2,
        ),
      );
      // Over TLS the file names the agent, as in production ('' reads as unset; a variable would win over the file).
      const env = { CONSUL_HTTP_ADDR: consulCaFile === undefined ? (nodes[i]?.agentAddr ?? '') : '', ST_SENTINEL_HOOKS_CONFIG: config };
      const clientReconfig = join(dir, `client-reconfig-${i}.sh`);
      const notification = join(dir, `notification-${i}.sh`);
      const scripts = [
        { path: clientReconfig, command: 'client-reconfig', logFile: join(dir, `hooks-${i}.log`) },
        { path: notification, command: 'notification', logFile: join(dir, `notify-${i}.log`), nice: 10 },
      ] as const;
      for (const { path, ...script } of scripts) await writeHookScript(path, { entry, repoRoot: REPO_ROOT, env, ...script });
      return { clientReconfig, notification };
    },
  });
  return { cluster, nodes, configs };
}
