// The faults: each one injects, and returns how to heal. The PRNG picks the kind and the target.
import { readFileSync, readdirSync } from 'node:fs';
import { sleep, waitFor, type ManagedServer } from '../processes.ts';
import type { Prng } from './prng.ts';
import { KV_PREFIX, type ChaosSystem } from './system.ts';

export interface Injected {
  readonly target: string;
  /** The st-api node this fault must take out of DNS, if any. */
  readonly nodeOut?: string;
  /** Plays may get the documented 503 while this fault lasts. */
  readonly mysqlDown?: boolean;
  heal(): Promise<void>;
}

export interface FaultContext {
  readonly system: ChaosSystem;
  readonly prng: Prng;
  readonly log: (line: string) => void;
  /** Absolute path of the watcher bundle, to find its running processes among our children. */
  readonly watcherEntry: string;
}

export interface FaultKind {
  readonly name: string;
  inject(ctx: FaultContext): Promise<Injected>;
}

/** The Redis master the three Sentinels agree on ("ip:port"). */
export async function agreedMaster(ctx: FaultContext, timeoutMs: number): Promise<string> {
  return await waitFor(
    async () => {
      const addrs = await ctx.system.redis.cluster.masterAddrs();
      return addrs.every((a) => a !== null && a === addrs[0]) ? addrs[0] : null;
    },
    { timeoutMs, intervalMs: 100, what: 'the Sentinels to agree on the master' },
  );
}

/** Our own child processes running the watcher bundle with `command`, by pid (never by name). */
export function watcherChildren(entry: string, command: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes(entry) && argv.includes(command)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function apiNode(ctx: FaultContext) {
  return ctx.prng.pick(ctx.system.apiNodes);
}

/** A fault that takes one st-api node out with `out` and heals it with `back`. */
function apiNodeFault(
  name: string,
  out: (server: ManagedServer) => Promise<void>,
  back: (server: ManagedServer) => Promise<void>,
): FaultKind {
  return {
    name,
    async inject(ctx) {
      const node = apiNode(ctx);
      await out(node.server);
      return { target: node.name, nodeOut: node.name, heal: () => back(node.server) };
    },
  };
}

const apiKill = apiNodeFault(
  'kill -9 st-api node',
  (server) => server.kill(),
  (server) => server.start(),
);

const apiStop = apiNodeFault(
  'SIGSTOP st-api node',
  (server) => server.pause(),
  (server) => server.resume(),
);

const redisMasterKill: FaultKind = {
  name: 'kill -9 Redis master',
  async inject(ctx) {
    const master = await agreedMaster(ctx, 20_000);
    const redis = ctx.system.redis.cluster.redisByKey(master);
    await redis.kill();
    // Heal only after the Sentinels promoted another, so the restart is the old master coming back.
    await waitFor(
      async () => {
        const addrs = await ctx.system.redis.cluster.masterAddrs();
        return addrs.every((a) => a !== null && a !== master && a === addrs[0]) || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `a new master after killing ${master}` },
    ).catch((error: unknown) => ctx.log(`  (no promotion seen: ${String(error)})`));
    // As after a crash with no config rewrite: it comes back claiming master, and Sentinel demotes it.
    return { target: master, heal: () => redis.start(null) };
  },
};

const sentinelKill: FaultKind = {
  name: 'kill -9 Sentinel',
  async inject(ctx) {
    const index = ctx.prng.int(0, ctx.system.sentinels.count - 1);
    await ctx.system.sentinels.kill(index);
    return { target: `sentinel-${index}`, heal: () => ctx.system.sentinels.restart(index) };
  },
};

const mariadbKill: FaultKind = {
  name: 'kill -9 MariaDB',
  async inject(ctx) {
    await ctx.system.mariadb.kill();
    // restart(): stop is a no-op on a dead server; start on the same port and data dir.
    return { target: 'mariadb', mysqlDown: true, heal: () => ctx.system.mariadb.restart() };
  },
};

const mariadbStop: FaultKind = {
  name: 'SIGSTOP MariaDB',
  async inject(ctx) {
    await ctx.system.mariadb.pause();
    return { target: 'mariadb', mysqlDown: true, heal: () => ctx.system.mariadb.resume() };
  },
};

const handExclusion: FaultKind = {
  name: 'exclusion written by hand',
  async inject(ctx) {
    const node = apiNode(ctx);
    const key = `${KV_PREFIX}/excluded/${node.name}`;
    // Not the watcher's JSON: what an operator types into the Consul UI.
    await ctx.system.kvPut(key, 'disk swap tonight -- ops');
    return { target: node.name, nodeOut: node.name, heal: () => ctx.system.kvDelete(key) };
  },
};

const consulReload: FaultKind = {
  name: 'Consul agents reloaded',
  inject(ctx) {
    // Every watch plan restarts and fires again with the data it already handled.
    ctx.system.consul.reload();
    return Promise.resolve({ target: 'all agents', heal: () => Promise.resolve() });
  },
};

/** A Route53 fault while a node is stopped, so a change has to get through it. */
function route53Fault(name: string, fault: { kind: 'throttling' | 'internalFailure'; count: number }): FaultKind {
  return {
    name,
    async inject(ctx) {
      ctx.system.route53.injectFault(fault);
      const node = apiNode(ctx);
      await node.server.pause();
      return {
        target: `${fault.count}× ${fault.kind} + ${node.name} stopped`,
        nodeOut: node.name,
        async heal() {
          ctx.system.route53.clearFaults();
          await node.server.resume();
        },
      };
    },
  };
}

const watcherKill: FaultKind = {
  name: 'watcher killed mid-run',
  async inject(ctx) {
    // A reload makes every agent run the handler; one of them is killed part-way through.
    ctx.system.consul.reload();
    const pids = await waitFor(
      () => {
        const found = watcherChildren(ctx.watcherEntry, 'handle');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'a watcher handler to start' },
    );
    await sleep(ctx.prng.int(100, 700));
    const pid = ctx.prng.pick(pids);
    let target = `handler pid ${pid}`;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      target += ' (had already finished)';
    }
    return { target, heal: () => Promise.resolve() };
  },
};

export const FAULTS: readonly FaultKind[] = [
  apiKill,
  apiStop,
  redisMasterKill,
  sentinelKill,
  mariadbKill,
  mariadbStop,
  handExclusion,
  consulReload,
  // A burst the watcher's retries absorb (route53MaxAttempts 6: five throttles, then success), so the
  // critical node must still leave DNS within one run. A longer burst fails runs by design (exit 75, the
  // next firing or reconcile repairs: test/watcher/lock-handover.test.ts) and is not judged by that bound.
  route53Fault('Route53 throttling', { kind: 'throttling', count: 5 }),
  route53Fault('Route53 5xx', { kind: 'internalFailure', count: 4 }),
  watcherKill,
];
