// Per-viewer play budget, shared by every node through Redis: a fixed one-minute window.
// It guards against a runaway client loop, not against a careful attacker, and like every use of
// Redis it fails open: if Redis is down or slow, plays are not limited.
import type { Redis } from 'ioredis';
import type { RedisSource } from '../cache/redis-client.ts';
import type { Metrics } from '../metrics.ts';

export interface RateLimitDecision {
  allowed: boolean;
  /** Seconds until the window resets; what Retry-After says when refused. */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  consume(userId: string, nowMs: number): Promise<RateLimitDecision>;
}

export const NO_RATE_LIMIT: RateLimiter = { consume: () => Promise.resolve({ allowed: true, retryAfterSeconds: 0 }) };

/** INCR and, on a window's first play, EXPIRE — atomically and in one command (EVALSHA after the first call). */
const COUNT_PLAY = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`;

type CountingRedis = Redis & { stApiCountPlay(key: string, ttlSeconds: number): Promise<number> };

export function redisRateLimiter(source: RedisSource, playsPerMinute: number, metrics: Metrics): RateLimiter {
  // The connection changes when the master moves; each new one needs the command defined once.
  const defined = new WeakSet<Redis>();
  const counting = (redis: Redis): CountingRedis => {
    if (!defined.has(redis)) {
      redis.defineCommand('stApiCountPlay', { numberOfKeys: 1, lua: COUNT_PLAY });
      defined.add(redis);
    }
    return redis as CountingRedis;
  };
  return {
    async consume(userId, nowMs) {
      const window = Math.floor(nowMs / 60_000);
      const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - nowMs) / 1000));
      const redis = source.client();
      if (redis === undefined) return { allowed: true, retryAfterSeconds };
      try {
        const count = await metrics.observe('redis', 'rate_limit', () => counting(redis).stApiCountPlay(`st-api:v1:plays:${userId}:${window}`, 120));
        return { allowed: Number(count) <= playsPerMinute, retryAfterSeconds };
      } catch (error) {
        // INCR on a demoted master answers READONLY (wrapped by Lua): the source looks for the new one.
        source.reportError(error, redis);
        return { allowed: true, retryAfterSeconds };
      }
    },
  };
}
