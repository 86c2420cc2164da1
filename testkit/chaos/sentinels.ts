// kill -9 and restart of one Sentinel. The Sentinel test bed can stop its Sentinels but not start
// one again, so a killed Sentinel is restarted here from its own (rewritten) sentinel.conf, on
// its port and in its dir, as a supervisor would after a crash.
import { join } from 'node:path';
import { command } from '../../sentinel-hooks/resp.ts';
import { LOOPBACK, ManagedServer, procState, waitFor } from '../processes.ts';
import type { SentinelCluster } from '../sentinel.ts';

const CMD_TIMEOUT = { timeoutMs: 1000 };

export class SentinelReviver {
  readonly #cluster: SentinelCluster;
  /** Sentinels restarted here, by index: these (not the test bed's) are the live processes. */
  readonly #revived = new Map<number, ManagedServer>();

  constructor(cluster: SentinelCluster) {
    this.#cluster = cluster;
  }

  get count(): number {
    return this.#cluster.sentinels.length;
  }

  pid(index: number): number {
    const revived = this.#revived.get(index);
    if (revived !== undefined) return revived.pid;
    const sentinel = this.#cluster.sentinels[index];
    if (sentinel === undefined) throw new Error(`no sentinel ${index}`);
    return sentinel.pid;
  }

  async kill(index: number): Promise<void> {
    const revived = this.#revived.get(index);
    if (revived !== undefined) {
      await revived.kill();
      return;
    }
    const pid = this.pid(index);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () => {
        const state = procState(pid);
        return state === null || state === 'Z';
      },
      { timeoutMs: 10_000, intervalMs: 20, what: `sentinel ${index} (pid ${pid}) to die` },
    );
  }

  async restart(index: number): Promise<void> {
    const sentinel = this.#cluster.sentinels[index];
    if (sentinel === undefined) throw new Error(`no sentinel ${index}`);
    const server =
      this.#revived.get(index) ??
      new ManagedServer({
        name: `redis-sentinel:${sentinel.port}`,
        command: 'redis-sentinel',
        args: [join(sentinel.dir, 'sentinel.conf')],
        logFile: sentinel.logFile,
        cwd: sentinel.dir,
        readyTimeoutMs: 15_000,
        stopTimeoutMs: 10_000,
        isReady: async () => (await command(LOOPBACK, sentinel.port, ['PING'], CMD_TIMEOUT)) === 'PONG',
      });
    this.#revived.set(index, server);
    await server.start();
    // Runtime-only settings the test bed applied at start (a restarted old master is demoted in ~2 s).
    await command(LOOPBACK, sentinel.port, ['SENTINEL', 'DEBUG', 'publish-period', '500', 'info-period', '1000'], CMD_TIMEOUT);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#revived.values()].map((server) => server.stop().catch(() => undefined)));
  }
}
