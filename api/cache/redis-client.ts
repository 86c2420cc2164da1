// The Redis connection st-api can live without: commands fail fast instead of queueing
// while it is down, and every command has a hard time bound.
import { Redis } from 'ioredis';

export interface RedisSettings {
  host: string;
  port: number;
  password?: string | undefined;
  db: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export function createRedisClient(settings: RedisSettings): Redis {
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
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    // The three lookups of one play leave in one write.
    enableAutoPipelining: true,
    lazyConnect: false,
  });
}
