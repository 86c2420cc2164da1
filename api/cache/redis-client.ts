// The Redis connection st-api can live without: commands fail fast instead of queueing
// while it is down, and every command has a hard time bound.
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

export interface RedisSettings {
  host: string;
  port: number;
  password?: string | undefined;
  db: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface RedisClientOptions {
  /**
   * false: one connection lifetime, no reconnect of its own ('end' follows the first close), and
   * no connect until connect() is called. Discovery uses it, because after a disconnect the master
   * may be elsewhere and only a fresh lookup can say where.
   */
  reconnect?: boolean;
}

export function createRedisClient(settings: RedisSettings, options: RedisClientOptions = {}): Redis {
  const reconnect = options.reconnect ?? true;
  return new Redis({
    host: settings.host,
    port: settings.port,
    ...(settings.password === undefined ? {} : { password: settings.password }),
    db: settings.db,
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
  });
}

/**
 * Where everything that uses Redis (cache, rate limiter, health probe) gets its connection. Asked
 * per call, never kept: with discovery, the connection changes when the master moves.
 */
export interface RedisSource {
  /** The connection to use now; undefined = no usable master right now (callers read a miss / fail open). */
  client(): Redis | undefined;
  /** What /health/deep says while client() is undefined, e.g. `down(reconnecting)`, `down(resolving)`, `not-master(slave)`. */
  unavailable(): string;
  /**
   * Callers report every Redis failure with the connection it came from. A READONLY reply means
   * the connection reached a replica (the master moved): discovery looks the master up again.
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
 * check and no lookup — this is the behaviour st-api had before discovery, kept as it was.
 */
export function staticRedisSource(settings: RedisSettings, logger: Logger): RedisSource {
  const redis = createRedisClient(settings);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  let down = false;
  redis.on('error', (error: Error & { code?: string }) => {
    if (!down) logger.warn({ cause: error.code ?? error.message }, 'redis unavailable; serving from the catalog');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info('redis available again');
    down = false;
  });
  return {
    client: () => (redis.status === 'ready' ? redis : undefined),
    unavailable: () => `down(${redis.status})`,
    reportError: () => undefined,
    reportNotMaster: () => undefined,
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
