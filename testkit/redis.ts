// Throwaway Redis servers for tests: a real redis-server on 127.0.0.1 that
// fault tests can SIGKILL, SIGSTOP and restart, never the shared one on 6379. With `tls`, the
// server speaks TLS only (port 0, tls-port), as a production Redis that encrypts in transit.
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { Redis as RedisClient } from 'ioredis';
import { LOOPBACK, ManagedServer, startInTempDirOnFreePort } from './processes.ts';

/** A TLS-only Redis: its certificate and key, and the CA it trusts for client certificates and replication. */
export interface RedisTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** tls-auth-clients: `no` (default here) = no client certificate needed; `yes` = mutual TLS. */
  readonly authClients?: 'no' | 'optional' | 'yes';
  /** The name clients check in its certificate (pingRedis); absent = the address, 127.0.0.1. */
  readonly servername?: string;
  /** The client certificate this Redis presents when it replicates from a master that wants one (tls-client-*). */
  readonly client?: { readonly certFile: string; readonly keyFile: string };
}

/**
 * redis-server's arguments for TLS only on `port`: the plain port is off (port 0), replication and
 * (in Sentinel) connections to instances and other Sentinels go over TLS too (tls-replication).
 */
export function redisTlsArgs(port: number, tls: RedisTlsFiles): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    tls.certFile,
    '--tls-key-file',
    tls.keyFile,
    '--tls-ca-cert-file',
    tls.caFile,
    '--tls-auth-clients',
    tls.authClients ?? 'no',
    '--tls-replication',
    'yes',
    ...(tls.client === undefined ? [] : ['--tls-client-cert-file', tls.client.certFile, '--tls-client-key-file', tls.client.keyFile]),
  ];
}

/** The same settings as lines of a redis.conf / sentinel.conf. */
export function redisTlsConfLines(port: number, tls: RedisTlsFiles): string[] {
  const args = redisTlsArgs(port, tls);
  const lines: string[] = [];
  for (let i = 0; i + 1 < args.length; i += 2) lines.push(`${(args[i] ?? '').slice(2)} ${args[i + 1] ?? ''}`);
  return lines;
}

export interface StartRedisOptions {
  /**
   * Appended to the command line, so they override the defaults (e.g.
   * `['--appendonly', 'yes']` to keep data across restart()).
   */
  readonly extraArgs?: readonly string[];
  /** TLS only: the port answers TLS and nothing else. */
  readonly tls?: RedisTlsFiles;
}

export interface RedisServer {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  /** Changes on restart. */
  readonly pid: number;
  /** Its working dir (--dir). */
  readonly dir: string;
  readonly logFile: string;
  /** Set when the server speaks TLS only. */
  readonly tls: RedisTlsFiles | undefined;
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
export function pingRedis(port: number, timeoutMs = 1_000, tls?: RedisTlsFiles): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // Over TLS the server's certificate is checked against the test CA, as a client would.
    const socket =
      tls === undefined
        ? createConnection({ host: LOOPBACK, port })
        : tlsConnect({
            host: LOOPBACK,
            port,
            ca: readFileSync(tls.caFile),
            ...(tls.servername === undefined ? {} : { servername: tls.servername }),
            ...clientCertificate(tls),
          });
    const connectEvent = tls === undefined ? 'connect' : 'secureConnect';
    let reply = '';
    const done = (error: Error | null, ok = false): void => {
      socket.destroy();
      if (error === null) resolve(ok);
      else reject(error);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no PING reply within ${timeoutMs} ms`)));
    socket.once('error', (error: Error) => done(error));
    socket.once(connectEvent, () => socket.write('PING\r\n'));
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

/** A server with tls-auth-clients yes wants the client certificate the test CA made for it. */
function clientCertificate(tls: RedisTlsFiles): { cert?: Buffer; key?: Buffer } {
  return tls.client === undefined ? {} : { cert: readFileSync(tls.client.certFile), key: readFileSync(tls.client.keyFile) };
}

class Redis extends ManagedServer implements RedisServer {
  readonly host = LOOPBACK;
  readonly port: number;
  readonly dir: string;
  readonly tls: RedisTlsFiles | undefined;

  constructor(port: number, dir: string, extraArgs: readonly string[], tls: RedisTlsFiles | undefined) {
    super({
      name: `redis-server:${port}`,
      command: 'redis-server',
      args: [
        '--bind',
        LOOPBACK,
        ...(tls === undefined ? ['--port', String(port)] : redisTlsArgs(port, tls)),
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
      isReady: () => pingRedis(port, 1_000, tls),
    });
    this.port = port;
    this.dir = dir;
    this.tls = tls;
  }
}

/** Starts a fresh redis-server on a free 127.0.0.1 port; resolves once PING answers PONG. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return startInTempDirOnFreePort(
    'redis',
    'st-redis',
    (port, dir) => new Redis(port, dir, options.extraArgs ?? [], options.tls),
    (error) => /Address already in use/i.test(error.log),
  );
}

/**
 * A short-lived admin connection for a test to look inside `server` (never the node's own), over TLS
 * when the server speaks only TLS (trusting its CA, checking its servername). It fails fast and never
 * retries, so a test sees the server's state, not the client's recovery.
 */
export async function withAdminConnection<T>(server: RedisServer, use: (redis: RedisClient) => Promise<T>): Promise<T> {
  const tls = server.tls;
  const redis = new RedisClient({
    host: server.host,
    port: server.port,
    ...(tls === undefined
      ? {}
      : { tls: { ca: readFileSync(tls.caFile, 'utf8'), ...(tls.servername === undefined ? {} : { servername: tls.servername }) } }),
    lazyConnect: true,
    connectTimeout: 3000,
    commandTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}
