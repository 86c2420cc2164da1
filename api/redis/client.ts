// The Redis connection st-api can live without: commands fail fast instead of queueing
// while it is down, and every command has a hard time bound.
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { REDIS_SCRIPTS, type ScriptedRedis } from './scripts.ts';
import { tlsFailure } from './tls.ts';

export interface RedisSettings {
  host: string;
  port: number;
  password?: string | undefined;
  db: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  /** TLS (tls.connect options: CA, servername, client certificate); absent = plain TCP. */
  tls?: ConnectionOptions | undefined;
}

export interface RedisClientOptions {
  /**
   * false: one connection lifetime, no reconnect of its own ('end' follows the first close), and
   * no connect until connect() is called. Discovery uses it, because after a disconnect the master
   * may be elsewhere and only a fresh lookup can say where.
   */
  reconnect?: boolean;
}

export function createRedisClient(settings: RedisSettings, options: RedisClientOptions = {}): ScriptedRedis {
  const reconnect = options.reconnect ?? true;
  const redis = new Redis({
    host: settings.host,
    port: settings.port,
    ...(settings.password === undefined ? {} : { password: settings.password }),
    db: settings.db,
    ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    // Over TLS it bounds the handshake too (ioredis waits for secureConnect).
    connectTimeout: settings.connectTimeoutMs,
    commandTimeout: settings.commandTimeoutMs,
    // A play must never wait for Redis to come back: reject at once while disconnected.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Keep reconnecting forever, but never hammer a recovering server.
    retryStrategy: reconnect ? (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000) : () => null,
    // The three lookups of one play leave in one write.
    enableAutoPipelining: true,
    lazyConnect: !reconnect,
    // Defined here, before any command: see scripts.ts for what a later definition breaks.
    scripts: REDIS_SCRIPTS,
  });
  return redis as ScriptedRedis;
}

/**
 * How long a caller waits for a command on a source's connection: past commandTimeout (which ends
 * every command ioredis sent or refused), a command that has not settled never will.
 */
export function commandDeadlineMs(settings: Pick<RedisSettings, 'commandTimeoutMs'>): number {
  return 2 * settings.commandTimeoutMs + 50;
}

/** The connection is broken inside the client library: replace it, do not wait on it. */
export class RedisStuckError extends Error {
  override name = 'RedisStuckError';
}

/** What withTimeout rejects with when a command outlives its source's deadline: no play waits on Redis longer than that, whatever the library does. */
export function redisStuck(ms: number): RedisStuckError {
  return new RedisStuckError(`command not settled within ${ms} ms`);
}

/**
 * Where everything that uses Redis (cache, rate limiter, health probe) gets its connection. Asked
 * per call, never kept: with discovery, the connection changes when the master moves.
 */
export interface RedisSource {
  /** The connection to use now; undefined = no usable master right now (callers read a miss / fail open). */
  client(): ScriptedRedis | undefined;
  /** Callers bound each command by this (withTimeout(…, redisStuck)) and report the RedisStuckError. */
  readonly deadlineMs: number;
  /** What /health/deep says while client() is undefined, e.g. `down(reconnecting)`, `down(resolving)`, `not-master(slave)`. */
  unavailable(): string;
  /**
   * Callers report every Redis failure with the connection it came from. A READONLY reply means
   * the connection reached a replica (the master moved): discovery looks the master up again. A
   * RedisStuckError means the connection is broken: it is replaced.
   */
  reportError(error: unknown, from: Redis): void;
  /** The health probe saw ROLE answer something other than master on this connection. */
  reportNotMaster(role: string, from: Redis): void;
  close(): Promise<void>;
}

/** Lua errors wrap the reply text ("ERR Error running script … READONLY …"), hence includes, not startsWith. */
export function isReadOnlyError(error: unknown): boolean {
  return error instanceof Error && error.message.includes('READONLY');
}

/**
 * A fixed address (`redis.host`): one client that reconnects to the same place forever. No role
 * check and no lookup. A client reported stuck is replaced by a new one to the same address.
 */
export function staticRedisSource(settings: RedisSettings, logger: Logger): RedisSource {
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  let down = false;
  /** A refused certificate or handshake, shown by health until the connection is ready again. */
  let tlsProblem: string | undefined;
  const address = `${settings.host}:${settings.port}`;
  const connect = (): ScriptedRedis => {
    const client = createRedisClient(settings);
    client.on('error', (error: Error & { code?: string }) => {
      if (client !== redis) return;
      const tls = tlsFailure(error);
      // Logged once per change: a wrong CA fails every reconnect the same way.
      if (!down || tls !== tlsProblem) {
        logger.warn(
          tls === undefined
            ? { cause: error.code ?? error.message, address }
            : { cause: tls, address, detail: error.message.slice(0, 200) },
          tls?.startsWith('certificate:') === true
            ? 'redis unavailable: its TLS certificate was refused; serving from the catalog'
            : 'redis unavailable; serving from the catalog',
        );
      }
      tlsProblem = tls;
      down = true;
    });
    client.on('ready', () => {
      if (client !== redis) return;
      if (down) logger.info('redis available again');
      down = false;
      tlsProblem = undefined;
    });
    return client;
  };
  let redis = connect();
  return {
    client: () => (redis.status === 'ready' ? redis : undefined),
    deadlineMs: commandDeadlineMs(settings),
    unavailable: () => `down(${tlsProblem ?? redis.status})`,
    reportError(error, from) {
      if (!(error instanceof RedisStuckError) || from !== redis) return;
      logger.error({ err: error.message }, 'redis connection stuck; replacing it');
      from.disconnect();
      redis = connect();
    },
    reportNotMaster: () => undefined,
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
