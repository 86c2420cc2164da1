// Every Lua script st-api runs, defined on each Redis connection as it is created (the ioredis
// `scripts` option), never later. ioredis 6 breaks a connection for good when a command is defined
// while commands are waiting in its auto-pipeline: that pipeline has no method for the new command,
// its replies come back one short, the callback throws an uncaught TypeError, and every later
// command on the connection waits forever. A failover hands st-api a fresh connection under load,
// which is exactly when that happened (test/api/redis-connection.test.ts).
import type { Redis } from 'ioredis';

/** INCR and, on a window's first play, EXPIRE — atomically and in one command (EVALSHA after the first call). */
const COUNT_PLAY = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`;

export const REDIS_SCRIPTS = {
  stApiCountPlay: { numberOfKeys: 1, lua: COUNT_PLAY },
} as const;

/** A connection made by createRedisClient: the scripts above are commands on it. */
export type ScriptedRedis = Redis & {
  stApiCountPlay(key: string, ttlSeconds: number): Promise<number>;
};
