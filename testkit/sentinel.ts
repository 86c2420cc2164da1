// A real Sentinel test bed on loopback: one master and two replicas, each on its own
// 127.0.0.X address (so Sentinel, ROLE and Consul all see distinct hosts), and three
// Sentinels on 127.0.0.1 with hook scripts. Every process is started and stopped by pid. With
// `tls`, every Redis and Sentinel speaks TLS only, replication and Sentinel's own links included.
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { command, ReplyError, type CommandOptions, type Reply } from '../sentinel-hooks/resp.ts';
import { freePort, LOOPBACK, makeTempDir, ManagedServer, waitFor } from './processes.ts';
import { redisTlsArgs, redisTlsConfLines, type RedisTlsFiles } from './redis.ts';

export interface SentinelClusterOptions {
  /** One Redis per address; the first starts as master. Default 127.0.0.2, .3, .4. */
  readonly ips?: readonly string[];
  readonly masterName?: string;
  readonly downAfterMs?: number;
  readonly failoverTimeoutMs?: number;
  /**
   * Absolute paths of executables for Sentinel `index` (0-based), if any. Called before any
   * Sentinel starts, with the ports chosen, so hook configurations can be written first
   * (Sentinel runs the notification script for +monitor at start).
   */
  /**
   * TLS only, for the instances and the Sentinels alike (one certificate; `servername` is the name
   * in it that clients check, since it need not carry the 127.0.0.X addresses).
   */
  readonly tls?: RedisTlsFiles;
  readonly hooks?: (index: number, layout: ClusterLayout) => Promise<{ readonly clientReconfig?: string; readonly notification?: string }>;
}

export interface ClusterLayout {
  readonly ips: readonly string[];
  readonly redisPort: number;
  readonly sentinelPorts: readonly number[];
}

export interface RedisNode {
  readonly ip: string;
  readonly port: number;
  /** "ip:port", as Sentinel and ROLE report it. */
  readonly key: string;
  readonly dir: string;
  readonly running: boolean;
  readonly pid: number;
  /** Starts (again); `replicaOf` null starts it as a master, as after a crash with no config rewrite. */
  start(replicaOf: string | null): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface SentinelNode {
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface SentinelCluster {
  readonly masterName: string;
  /** What a resp.ts command to any of them needs (a timeout, and TLS when the cluster has it). */
  readonly commandOptions: CommandOptions;
  readonly redis: readonly RedisNode[];
  readonly sentinels: readonly SentinelNode[];
  /** One command to Sentinel `index`. */
  sentinelCommand(index: number, args: readonly string[]): Promise<Reply>;
  /** Each Sentinel's `get-master-addr-by-name` ("ip:port", null if unknown or silent). */
  masterAddrs(): Promise<(string | null)[]>;
  /** Until every Sentinel sees the master with 2 replicas and 2 other Sentinels, no failover running. */
  waitStable(timeoutMs: number): Promise<void>;
  redisByKey(key: string): RedisNode;
  stop(): Promise<void>;
}

function commandOptions(tls: RedisTlsFiles | undefined): CommandOptions {
  return {
    timeoutMs: 1000,
    ...(tls === undefined ? {} : { tls: { ca: readFileSync(tls.caFile, 'utf8'), servername: tls.servername } }),
  };
}

async function ping(host: string, port: number, options: CommandOptions): Promise<boolean> {
  return (await command(host, port, ['PING'], options)) === 'PONG';
}

/**
 * A hook wrapper as Sentinel needs it: `#!`, executable, absolute paths, its own environment.
 * `entry` is a bundled .mjs (fast: Sentinel runs dozens of scripts per failover) or a .ts run
 * through tsx from `repoRoot`.
 */
export async function writeHookScript(
  path: string,
  options: { entry: string; repoRoot: string; command: string; env: Readonly<Record<string, string>>; logFile: string; nice?: number },
): Promise<void> {
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const viaTsx = options.entry.endsWith('.ts');
  const lines = [
    '#!/bin/sh',
    '# Sentinel execve()s this with its own environment and cwd = its dir: everything absolute here.',
    ...Object.entries(options.env).map(([k, v]) => `export ${k}=${quote(v)}`),
    // tsx is resolved from the repository, not from Sentinel's dir.
    ...(viaTsx ? [`cd ${quote(options.repoRoot)} || exit 2`] : []),
    `exec ${options.nice === undefined ? '' : `nice -n ${options.nice} `}${quote(process.execPath)} ${viaTsx ? '--import tsx ' : ''}${quote(options.entry)} ${options.command} "$@" 2>>${quote(options.logFile)}`,
    '',
  ];
  await writeFile(path, lines.join('\n'));
  await chmod(path, 0o755);
}

class Node implements RedisNode {
  readonly ip: string;
  readonly port: number;
  readonly dir: string;
  readonly #tls: RedisTlsFiles | undefined;
  #server: ManagedServer | null = null;
  constructor(ip: string, port: number, dir: string, tls: RedisTlsFiles | undefined) {
    this.ip = ip;
    this.port = port;
    this.dir = dir;
    this.#tls = tls;
  }
  get key(): string {
    return `${this.ip}:${this.port}`;
  }
  get running(): boolean {
    return this.#server?.running ?? false;
  }
  get pid(): number {
    if (this.#server === null) throw new Error(`${this.key} never started`);
    return this.#server.pid;
  }
  async start(replicaOf: string | null): Promise<void> {
    if (this.running) throw new Error(`${this.key} is running`);
    const [host, port] = replicaOf === null ? [] : replicaOf.split(':');
    this.#server = new ManagedServer({
      name: `redis-server:${this.key}`,
      command: 'redis-server',
      args: [
        '--bind',
        this.ip,
        ...(this.#tls === undefined ? ['--port', String(this.port)] : redisTlsArgs(this.port, this.#tls)),
        '--protected-mode',
        'no',
        // Replicas connect from 127.0.0.1: without this the master reports them all as 127.0.0.1.
        '--replica-announce-ip',
        this.ip,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--daemonize',
        'no',
        '--logfile',
        '',
        ...(host === undefined || port === undefined ? [] : ['--replicaof', host, port]),
      ],
      logFile: join(this.dir, 'redis.log'),
      readyTimeoutMs: 15_000,
      stopTimeoutMs: 10_000,
      isReady: () => ping(this.ip, this.port, commandOptions(this.#tls)),
    });
    await this.#server.start();
  }
  async kill(): Promise<void> {
    await this.#server?.kill();
  }
  async stop(): Promise<void> {
    await this.#server?.stop();
  }
}

function sentinelConf(o: {
  port: number;
  dir: string;
  masterName: string;
  master: RedisNode;
  downAfterMs: number;
  failoverTimeoutMs: number;
  hooks: { clientReconfig?: string; notification?: string };
  tls: RedisTlsFiles | undefined;
}): string {
  return [
    ...(o.tls === undefined ? [`port ${o.port}`] : redisTlsConfLines(o.port, o.tls)),
    `bind ${LOOPBACK}`,
    'daemonize no',
    'logfile ""',
    `dir ${o.dir}`,
    `sentinel monitor ${o.masterName} ${o.master.ip} ${o.master.port} 2`,
    `sentinel down-after-milliseconds ${o.masterName} ${o.downAfterMs}`,
    `sentinel failover-timeout ${o.masterName} ${o.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${o.masterName} 1`,
    ...(o.hooks.clientReconfig === undefined ? [] : [`sentinel client-reconfig-script ${o.masterName} ${o.hooks.clientReconfig}`]),
    ...(o.hooks.notification === undefined ? [] : [`sentinel notification-script ${o.masterName} ${o.hooks.notification}`]),
    'sentinel deny-scripts-reconfig yes',
    'sentinel resolve-hostnames no',
    'sentinel announce-hostnames no',
    '',
  ].join('\n');
}

function field(reply: Reply, name: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (reply[i] === name) return String(reply[i + 1]);
  return undefined;
}

export async function startSentinelCluster(options: SentinelClusterOptions = {}): Promise<SentinelCluster> {
  const ips = options.ips ?? ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const masterName = options.masterName ?? 'mymaster';
  const tls = options.tls;
  const adminOptions = commandOptions(tls);
  const redisPort = await freePort();
  const redis: Node[] = [];
  const sentinels: { server: ManagedServer; port: number; dir: string }[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(sentinels.map((s) => s.server.stop().catch(() => undefined)));
    await Promise.all(redis.map((r) => r.stop().catch(() => undefined)));
  };
  try {
    for (const [i, ip] of ips.entries()) {
      const dir = await makeTempDir(`st-redis-${i}`);
      const node = new Node(ip, redisPort, dir, tls);
      redis.push(node);
      await node.start(i === 0 ? null : `${ips[0]}:${redisPort}`);
    }
    const master = redis[0];
    if (master === undefined) throw new Error('no redis addresses');
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      let port = await freePort();
      while (sentinelPorts.includes(port) || port === redisPort) port = await freePort();
      sentinelPorts.push(port);
    }
    const layout: ClusterLayout = { ips, redisPort, sentinelPorts };
    for (const [i, port] of sentinelPorts.entries()) {
      const hooks = (await options.hooks?.(i, layout)) ?? {};
      await makeTempDir(`st-sentinel-${i}`).then(async (d) => {
        const conf = join(d, 'sentinel.conf');
        await writeFile(
          conf,
          sentinelConf({
            port,
            dir: d,
            masterName,
            master,
            downAfterMs: options.downAfterMs ?? 1000,
            failoverTimeoutMs: options.failoverTimeoutMs ?? 10_000,
            hooks,
            tls,
          }),
        );
        const server = new ManagedServer({
          name: `redis-sentinel:${port}`,
          command: 'redis-sentinel',
          args: [conf],
          logFile: join(d, 'sentinel.log'),
          cwd: d,
          readyTimeoutMs: 15_000,
          stopTimeoutMs: 10_000,
          isReady: () => ping(LOOPBACK, port, adminOptions),
        });
        await server.start();
        sentinels.push({ server, port, dir: d });
      });
    }
    for (const s of sentinels) {
      // Redis ≥ 7.0: a restarted old master is demoted in ~2 s instead of ~10.7 s.
      await command(LOOPBACK, s.port, ['SENTINEL', 'DEBUG', 'publish-period', '500', 'info-period', '1000'], adminOptions);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const sentinelCommand = async (index: number, args: readonly string[]): Promise<Reply> => {
    const s = sentinels[index];
    if (s === undefined) throw new Error(`no sentinel ${index}`);
    return await command(LOOPBACK, s.port, args, adminOptions);
  };
  const cluster: SentinelCluster = {
    masterName,
    commandOptions: adminOptions,
    redis,
    sentinels: sentinels.map((s) => ({
      port: s.port,
      dir: s.dir,
      logFile: s.server.logFile,
      get pid() {
        return s.server.pid;
      },
      stop: () => s.server.stop(),
    })),
    sentinelCommand,
    async masterAddrs() {
      return await Promise.all(
        sentinels.map(async (_s, i) => {
          const reply = await sentinelCommand(i, ['SENTINEL', 'get-master-addr-by-name', masterName]).catch(() => null);
          return Array.isArray(reply) && typeof reply[0] === 'string' ? `${reply[0]}:${String(reply[1])}` : null;
        }),
      );
    },
    async waitStable(timeoutMs) {
      await waitFor(
        async () => {
          const replies = await Promise.all(sentinels.map((_s, i) => sentinelCommand(i, ['SENTINEL', 'MASTER', masterName])));
          return replies.every(
            (r) =>
              !(r instanceof ReplyError) &&
              field(r, 'num-slaves') === '2' &&
              field(r, 'num-other-sentinels') === '2' &&
              field(r, 'flags') === 'master',
          );
        },
        { timeoutMs, intervalMs: 200, what: 'every Sentinel to see 2 replicas and 2 other Sentinels' },
      );
    },
    redisByKey(key) {
      const found = redis.find((r) => r.key === key);
      if (found === undefined) throw new Error(`no redis ${key}`);
      return found;
    },
    stop: stopAll,
  };
  return cluster;
}
