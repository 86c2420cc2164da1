// Component tests against real MariaDB and Redis: the catalog read from MySQL, the Redis cache in
// front of it, and the rule that a denial is never cached for long.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { ANY_LAG, fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { waitFor, waitForWindowWithRoom } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';

const DATABASE = 'st_catalog';
let mariadb: MariaDbServer;
let redis: RedisServer;
let node: TestNode;
let db: mysql.Pool;

before(async () => {
  [mariadb, redis] = await Promise.all([startMariaDb(), startRedis()]);
  await createCatalogDatabase(mariadb, DATABASE, demoDataset(Date.now()));
  db = mysql.createPool({ ...mariadb.connectionOptions(), database: DATABASE, timezone: 'Z', connectionLimit: 2 });
  node = await startTestNode({
    mysql: { server: mariadb, database: DATABASE },
    redis,
    overrides: { cache: { denialSeconds: 1, rightsSeconds: 30 } },
  });
});

after(async () => {
  await node.close();
  await db.end();
  await Promise.all([mariadb.stop(), redis.stop()]);
});

async function play(userId: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await node.play(body, node.tokenFor(userId));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function metric(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

describe('when the catalog is in MySQL', () => {
  it('then the decisions match the demo data: owned, rented, subscribed, denied', async () => {
    assert.equal((await play('demo-user', { contentId: 'tt-demo-0001', device: 'tv' })).body.quality, '2160p');
    assert.equal((await play('demo-user', { contentId: 'tt-demo-0002', device: 'web' })).body.quality, '1080p');
    assert.equal((await play('mobile-user', { contentId: 'tt-demo-0003', device: 'ios' })).body.quality, '480p');
    assert.equal((await play('demo-user', { contentId: 'tt-demo-0004', device: 'web' })).body.code, 'RENTAL_EXPIRED');
    assert.equal((await play('lapsed-user', { contentId: 'tt-demo-0001', device: 'web' })).body.code, 'SUBSCRIPTION_EXPIRED');
    assert.equal((await play('mobile-user', { contentId: 'tt-demo-0003', device: 'tv' })).body.code, 'DEVICE_NOT_ALLOWED');
    assert.equal((await play('demo-user', { contentId: 'tt-unknown', device: 'web' })).body.code, 'CONTENT_NOT_FOUND');
    assert.equal((await play('demo-user', { contentId: 'tt-demo-0001', device: 'fridge' })).body.code, 'UNKNOWN_DEVICE');
  });

  it('then /health/deep reports MySQL and the Redis master', async () => {
    // Lag may warn after one stall of a busy machine; every other probe must pass.
    // Bounded, not one sample: a stall may also flag a Redis command past its 150 ms deadline for a moment.
    const deep = await waitFor(
      async () => {
        const answer = await fetchDeepHealth(node.baseUrl);
        return statusApartFromLag(answer) === 200 ? answer : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: '/health/deep to pass' },
    );
    assert.match(
      deep.body,
      new RegExp(String.raw`^(?:ok|warn) node=serving mysql=ok\([\d.]+ms\) redis=ok\([\d.]+ms,master\) keys=ok\(4\) ${ANY_LAG}$`),
    );
  });
});

describe('when lookups repeat', () => {
  it('then a granted play is served from the cache, even after the row changes', async () => {
    const body = { contentId: 'tt-demo-0001', device: 'android' };
    const hitsBefore = await metric(/st_api_cache_lookups_total\{kind="rights",result="hit"\} (\d+)/);
    assert.equal((await play('sd-buyer', body)).status, 200);
    await db.execute('DELETE FROM purchases WHERE user_id = ? AND content_id = ?', ['sd-buyer', 'tt-demo-0001']);
    // The rights entry is still fresh (30 s): the cache, not MySQL, answers.
    assert.equal((await play('sd-buyer', body)).status, 200);
    assert.ok((await metric(/st_api_cache_lookups_total\{kind="rights",result="hit"\} (\d+)/)) > hitsBefore);
  });

  it('then a viewer who has just bought plays within the short denial TTL', async () => {
    const body = { contentId: 'tt-demo-0003', device: 'web' };
    assert.equal((await play('new-buyer', body)).body.code, 'NOT_PURCHASED');
    await db.execute("INSERT INTO purchases (user_id, content_id, kind, max_height, expires_at) VALUES (?, ?, 'own', 720, NULL)", [
      'new-buyer',
      'tt-demo-0003',
    ]);
    const bought = Date.now();
    const played = await waitFor(
      async () => {
        const result = await play('new-buyer', body);
        return result.status === 200 ? result : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the new purchase to play' },
    );
    assert.equal(played.body.quality, '720p');
    // denialSeconds is 1 here: had the denial been kept as long as a grant (rightsSeconds, 30 s),
    // the purchase would not play for 30 s. 10 s leaves a busy machine room and still tells the two apart.
    assert.ok(Date.now() - bought < 10_000, `played ${Date.now() - bought} ms after the purchase`);
  });

  it('then the cache keys carry short TTLs in Redis', async () => {
    const client = new (await import('ioredis')).Redis({ host: redis.host, port: redis.port, lazyConnect: true });
    await client.connect();
    try {
      const ttl = await client.ttl('st-api:v1:rights:new-buyer:tt-demo-0003');
      assert.ok(ttl > 0 && ttl <= 30, `rights TTL ${ttl}`);
      const deniedKey = 'st-api:v1:rights:nobody-at-all:tt-demo-0001';
      assert.equal((await play('nobody-at-all', { contentId: 'tt-demo-0001', device: 'web' })).status, 403);
      const deniedTtl = await waitFor(
        async () => {
          const value = await client.ttl(deniedKey);
          return value > 0 ? value : undefined;
        },
        { timeoutMs: 5000, intervalMs: 20, what: 'the denial to be cached' },
      );
      assert.ok(deniedTtl <= 1, `denial TTL ${deniedTtl}`);
    } finally {
      client.disconnect();
    }
  });
});

describe('when one viewer plays faster than the per-minute budget', () => {
  it('then the excess gets 429 RATE_LIMITED with Retry-After, and other viewers are unaffected', async () => {
    const limited = await startTestNode({
      mysql: { server: mariadb, database: DATABASE },
      redis,
      overrides: { rateLimit: { playsPerMinute: 2 } },
    });
    try {
      const body = { contentId: 'tt-demo-0001', device: 'web' };
      // The budget is per clock minute: all three plays must fall in one, or the third starts afresh.
      await waitForWindowWithRoom(60_000, 20_000);
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 3; i += 1) {
        const response = await limited.play(body, limited.tokenFor('greedy-viewer'));
        statuses.push(response.status);
        if (response.status === 429) refused = response;
      }
      // greedy-viewer owns nothing: the first two are honest 403s; the third is over budget, and
      // the budget is judged before the denial, so a client looping on a 403 is slowed down too.
      assert.deepEqual(statuses, [403, 403, 429]);
      assert.equal(((await refused?.json()) as { code: string }).code, 'RATE_LIMITED');
      const retryAfter = Number(refused?.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.equal((await limited.play(body, limited.tokenFor('premium-user'))).status, 200);
    } finally {
      await limited.close();
    }
  });
});
