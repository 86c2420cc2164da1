// Per-viewer play budget, shared by every node through Redis: a fixed one-minute window.
// It guards against a runaway client loop, not against a careful attacker, and like every use of
// Redis it fails open: if Redis is down or slow, plays are not limited.
import { withTimeout } from '../../common/with-timeout.ts';
import { redisStuck, type RedisSource } from '../redis/client.ts';
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

export function redisRateLimiter(source: RedisSource, playsPerMinute: number, metrics: Metrics): RateLimiter {
  return {
    async consume(userId, nowMs) {
      const window = Math.floor(nowMs / 60_000);
      const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - nowMs) / 1000));
      const redis = source.client();
      if (redis === undefined) return { allowed: true, retryAfterSeconds };
      try {
        const count = await metrics.observe('redis', 'rate_limit', () =>
          withTimeout(redis.stApiCountPlay(`st-api:v1:plays:${userId}:${window}`, 120), source.deadlineMs, redisStuck),
        );
        return { allowed: Number(count) <= playsPerMinute, retryAfterSeconds };
      } catch (error) {
        // INCR on a demoted master answers READONLY (wrapped by Lua): the source looks for the new one.
        // A stuck connection is replaced the same way.
        source.reportError(error, redis);
        return { allowed: true, retryAfterSeconds };
      }
    },
  };
}
