// The Redis connection st-api's plays use, against a real redis-server: a fresh connection serves
// the cache and the rate limiter side by side from its first command (the state every failover
// hands over, under load), and a connection reported stuck is replaced instead of waited on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { CachedCatalogStore } from '../../api/catalog/cached-store.ts';
import { redisStuck, RedisStuckError, staticRedisSource, type RedisSource } from '../../api/redis/client.ts';
import type { ScriptedRedis } from '../../api/redis/scripts.ts';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { MemoryCatalogStore } from '../../api/catalog/memory-store.ts';
import { createLogger } from '../../api/logger.ts';
import { redisProbe } from '../../api/health/probes.ts';
import { Metrics } from '../../api/metrics.ts';
import { redisRateLimiter } from '../../api/playback/rate-limit.ts';
import { withTimeout } from '../../common/with-timeout.ts';
import { waitFor } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';

const logger = createLogger({ level: 'silent', program: 'st-api-test' });
const settings = (server: RedisServer) => ({ host: server.host, port: server.port, db: 0, commandTimeoutMs: 200, connectTimeoutMs: 1000 });

/** Rejects if `work` has not settled within `ms`: a hung promise fails the test instead of hanging it. */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([work, hung]).finally(() => clearTimeout(timer));
}

async function readySource(server: RedisServer): Promise<RedisSource> {
  const source = staticRedisSource(settings(server), logger);
  await waitFor(() => source.client(), { timeoutMs: 5000, intervalMs: 10, what: 'the connection to be ready' });
  return source;
}

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

describe('when a fresh connection gets a cache read, a play count and a health probe in the same tick', () => {
  it('then every one of them settles, and the connection keeps answering afterwards', async () => {
    // Twenty fresh connections: the order inside one tick is the point, not luck.
    for (let round = 0; round < 20; round++) {
      const source = await readySource(server);
      const metrics = new Metrics({ defaultMetrics: false });
      const store = new CachedCatalogStore({
        origin: new MemoryCatalogStore(demoDataset(Date.now())),
        redis: source,
        ttls: { contentSeconds: 60, deviceClassSeconds: 60, rightsSeconds: 60, denialSeconds: 2 },
        metrics,
        logger,
        now: Date.now,
      });
      const limiter = redisRateLimiter(source, 1000, metrics);
      const user = `round-${round}-${Date.now()}`;
      // One instant for every count: both land in the same per-minute key whatever the clock does meanwhile.
      const playedAt = Date.now();
      try {
        // A cache read queued first, then the first play count on this connection: with a Lua
        // command defined lazily (as st-api once did), this is what left every later command hanging.
        const [data, first, probe] = await within(
          Promise.all([store.playData(user, 'tt-demo-0001'), limiter.consume(user, playedAt), redisProbe(source).run(1000)]),
          2000,
          'the same-tick commands',
        );
        assert.equal(data.content?.id, 'tt-demo-0001');
        assert.equal(first.allowed, true);
        assert.match(probe.text, /^ok\([\d.]+ms,master\)$/);
        await within(limiter.consume(user, playedAt), 2000, 'a later play count');
        const counted = await within(source.client()!.get(`st-api:v1:plays:${user}:${Math.floor(playedAt / 60_000)}`), 2000, 'a later GET');
        assert.equal(counted, '2', 'both plays were counted on the server');
      } finally {
        await source.close();
      }
    }
  });
});

describe('when a command never settles', () => {
  it('then withTimeout gives up after its bound with a RedisStuckError', async () => {
    const started = Date.now();
    // A promise that never settles: without the bound this would never return (within() fails it).
    await assert.rejects(
      within(withTimeout(new Promise(() => undefined), 50, redisStuck), 5000, 'withTimeout on a hung promise'),
      RedisStuckError,
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 45, `gave up after ${waited} ms, before its 50 ms bound`);
    assert.equal(await withTimeout(Promise.resolve('value'), 50, redisStuck), 'value');
  });

  it('then a reply that arrived while this process was busy past the bound still wins (a stall is not a stuck connection)', async () => {
    // Node runs expired timers before it reads sockets: after a stall longer than the bound, a
    // verdict taken in the timer itself would call a healthy connection stuck (and replace it).
    const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await redis.connect();
      let stuck = 0;
      for (let i = 0; i < 20; i += 1) {
        const reply = withTimeout(redis.get('st-api:test:stall'), 100, redisStuck);
        const until = Date.now() + 300; // the event loop held past the bound while the reply arrives
        while (Date.now() < until) {
          /* busy: this process stalls */
        }
        await reply.catch((error: unknown) => {
          if (error instanceof RedisStuckError) stuck += 1;
          else throw error;
        });
      }
      assert.equal(stuck, 0, `${stuck} of 20 replies that had arrived were called stuck`);
    } finally {
      redis.disconnect();
    }
  });

  it("then a play waits no longer than the source's bound, is answered from the catalog, and the connection is reported", async () => {
    // A command that really never settles: a client without a command timeout, on a server that is
    // paused (SIGSTOP), stands in for a connection wedged inside the client library.
    const paused = await startRedis();
    const hanging = new Redis({ host: paused.host, port: paused.port, lazyConnect: true, maxRetriesPerRequest: null });
    hanging.on('error', () => undefined);
    await hanging.connect();
    const reported: unknown[] = [];
    const source: RedisSource = {
      client: () => hanging as ScriptedRedis,
      deadlineMs: 150,
      unavailable: () => 'down(test)',
      reportError: (error) => reported.push(error),
      reportNotMaster: () => undefined,
      close: () => Promise.resolve(),
    };
    const store = new CachedCatalogStore({
      origin: new MemoryCatalogStore(demoDataset(Date.now())),
      redis: source,
      ttls: { contentSeconds: 60, deviceClassSeconds: 60, rightsSeconds: 60, denialSeconds: 2 },
      metrics: new Metrics({ defaultMetrics: false }),
      logger,
      now: Date.now,
    });
    try {
      await paused.pause();
      const started = Date.now();
      // The connection has no command timeout and its server is stopped: only the source's 150 ms
      // bound ends the wait. 5 s (within) tells "bounded" from "hung" on a busy machine.
      const data = await within(store.playData('demo-user', 'tt-demo-0001'), 5000, 'a play on a hung connection');
      const waited = Date.now() - started;
      assert.equal(data.content?.id, 'tt-demo-0001', 'answered from the catalog');
      assert.ok(waited >= 140, `answered after ${waited} ms, before the 150 ms bound: the command was never waited on`);
      assert.ok(
        reported.some((error) => error instanceof RedisStuckError),
        'the source heard that the connection is stuck',
      );
    } finally {
      hanging.disconnect();
      await paused.resume();
      await paused.stop();
    }
  });

  it('then a connection reported stuck is replaced by a working one to the same server', async () => {
    const source = await readySource(server);
    try {
      const stuck = source.client()!;
      source.reportError(new RedisStuckError('command not settled'), stuck);
      const fresh = await waitFor(() => source.client(), { timeoutMs: 5000, intervalMs: 10, what: 'a new connection' });
      assert.notEqual(fresh, stuck);
      assert.equal(stuck.status, 'end', 'the stuck connection was closed');
      assert.equal(await within(fresh.set('st-api:test:replaced', '1'), 2000, 'SET on the new connection'), 'OK');
      // Any other error is the server's business, not the connection's: nothing is replaced.
      source.reportError(new Error('ERR something'), fresh);
      assert.equal(source.client(), fresh);
    } finally {
      await source.close();
    }
  });
});
