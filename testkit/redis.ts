// Throwaway Redis servers for tests: a real redis-server on 127.0.0.1 that
// fault tests can SIGKILL, SIGSTOP and restart, never the shared one on 6379.
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { LOOPBACK, ManagedServer, startInTempDirOnFreePort } from './processes.ts';

export interface StartRedisOptions {
  /**
   * Appended to the command line, so they override the defaults (e.g.
   * `['--appendonly', 'yes']` to keep data across restart()).
   */
  readonly extraArgs?: readonly string[];
}

export interface RedisServer {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  /** Changes on restart. */
  readonly pid: number;
  /** Its working dir (--dir). */
  readonly dir: string;
  readonly logFile: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Same port, same dir; data survives only if persistence was enabled via extraArgs. */
  restart(): Promise<void>;
}

/**
 * Sends PING on a raw socket: a client library would reconnect and queue,
 * hiding exactly the states tests care about.
 */
export function pingRedis(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: LOOPBACK, port });
    let reply = '';
    const done = (error: Error | null, ok = false): void => {
      socket.destroy();
      if (error === null) resolve(ok);
      else reject(error);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no PING reply within ${timeoutMs} ms`)));
    socket.once('error', (error) => done(error));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) {
        // -LOADING and friends mean "up but not serving yet".
        if (reply.startsWith('+PONG')) done(null, true);
        else done(new Error(`PING answered ${JSON.stringify(reply.trim())}`));
      }
    });
  });
}

class Redis extends ManagedServer implements RedisServer {
  readonly host = LOOPBACK;
  readonly port: number;
  readonly dir: string;

  constructor(port: number, dir: string, extraArgs: readonly string[]) {
    super({
      name: `redis-server:${port}`,
      command: 'redis-server',
      args: [
        '--bind',
        LOOPBACK,
        '--port',
        String(port),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--logfile',
        '', // stdout, which goes to logFile
        ...extraArgs,
      ],
      logFile: join(dir, 'redis.log'),
      readyTimeoutMs: 20_000,
      stopTimeoutMs: 10_000,
      isReady: () => pingRedis(port),
    });
    this.port = port;
    this.dir = dir;
  }
}

/** Starts a fresh redis-server on a free 127.0.0.1 port; resolves once PING answers PONG. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return startInTempDirOnFreePort(
    'redis',
    'st-redis',
    (port, dir) => new Redis(port, dir, options.extraArgs ?? []),
    (error) => /Address already in use/i.test(error.log),
  );
}
