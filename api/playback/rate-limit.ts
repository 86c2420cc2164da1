// Per-viewer play budget, shared by every node through Redis: a fixed one-minute window.
// It guards against a runaway client loop, not against a careful attacker, and like every use of
// Redis it fails open: if Redis is down or slow, plays are not limited.
import type { Redis } from 'ioredis';
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

export function redisRateLimiter(redis: Redis, playsPerMinute: number, metrics: Metrics): RateLimiter {
  return {
    async consume(userId, nowMs) {
      const window = Math.floor(nowMs / 60_000);
      const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - nowMs) / 1000));
      if (redis.status !== 'ready') return { allowed: true, retryAfterSeconds };
      const key = `st-api:v1:plays:${userId}:${window}`;
      try {
        const results = await metrics.observe('redis', 'rate_limit', () => redis.pipeline().incr(key).expire(key, 120).exec());
        const count = Number(results?.[0]?.[1] ?? 0);
        return { allowed: count <= playsPerMinute, retryAfterSeconds };
      } catch {
        return { allowed: true, retryAfterSeconds };
      }
    },
  };
}
