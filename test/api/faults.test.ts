// Fault tests: real MariaDB and Redis killed, stalled and restarted under a running node.
// The rule: degrade, never fall over — Redis down costs nothing but speed; MySQL down costs only
// the plays no fresh cache entry can answer, with a truthful 503; both recover without a restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { statusApartFromLag } from '../../testkit/health.ts';
import { waitFor } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';

const DATABASE = 'st_faults';
let mariadb: MariaDbServer;
let redis: RedisServer;
let node: TestNode;

before(async () => {
  [mariadb, redis] = await Promise.all([startMariaDb(), startRedis()]);
  await createCatalogDatabase(mariadb, DATABASE, demoDataset(Date.now()));
  node = await startTestNode({ mysql: { server: mariadb, database: DATABASE }, redis });
});

after(async () => {
  await node.close();
  await Promise.all([mariadb.stop(), redis.stop()]);
});

async function play(
  userId: string,
  contentId: string,
  device = 'web',
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers; ms: number }> {
  const started = Date.now();
  const response = await node.play({ contentId, device }, node.tokenFor(userId));
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
    ms: Date.now() - started,
  };
}

async function health(): Promise<{ status: number; body: string }> {
  const response = await fetch(`${node.baseUrl}/health/deep`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

/** Waits (polling every 100 ms, at most `timeoutMs`) for health to pass, lag apart. */
function healthPasses(what: string, timeoutMs = 5000): Promise<true> {
  return waitFor(async () => (statusApartFromLag(await health()) === 200 ? true : undefined), { timeoutMs, intervalMs: 100, what });
}

/** Waits (polling every 100 ms, at most 5 s) for this play to answer 200. */
function playsAgain(what: string, userId: string, contentId: string, device: string): Promise<true> {
  return waitFor(async () => ((await play(userId, contentId, device)).status === 200 ? true : undefined), {
    timeoutMs: 5000,
    intervalMs: 100,
    what,
  });
}

describe('when Redis is killed', () => {
  it('then plays still succeed from MySQL, health is warning, and both recover when Redis returns', async () => {
    assert.equal((await play('demo-user', 'tt-demo-0001')).status, 200);
    await redis.kill();
    for (const contentId of ['tt-demo-0001', 'tt-demo-0002']) {
      const result = await play('demo-user', contentId);
      assert.equal(result.status, 200, JSON.stringify(result.body));
    }
    const degraded = await health();
    assert.equal(degraded.status, 429);
    assert.match(degraded.body, /^warn .*mysql=ok.* redis=down/);

    await redis.restart();
    const recovered = await healthPasses('health to pass again');
    assert.equal(recovered, true);
    assert.equal((await play('demo-user', 'tt-demo-0001')).status, 200);
  });
});

describe('when Redis stalls (SIGSTOP)', () => {
  it('then plays answer from MySQL after a bounded wait, and health says warning', async () => {
    await redis.pause();
    try {
      const result = await play('premium-user', 'tt-demo-0003');
      assert.equal(result.status, 200, JSON.stringify(result.body));
      // The command timeout is 50 ms per lookup. Were it not applied, the play would wait on the stalled
      // Redis until the client's 10 s abort; 5 s tells the two apart on a busy machine.
      assert.ok(result.ms < 5000, `play took ${result.ms} ms with Redis stalled`);
      const degraded = await health();
      assert.equal(degraded.status, 429);
      assert.match(degraded.body, /redis=(error|timeout|down)/);
    } finally {
      await redis.resume();
    }
    await healthPasses('health to pass after resume');
  });
});

describe('when MySQL is killed', () => {
  it('then a fresh cache entry still plays, an uncached play gets 503 with Retry-After, and health is critical', async () => {
    // Warm the cache for one play.
    assert.equal((await play('demo-user', 'tt-demo-0002', 'tv')).status, 200);
    await mariadb.kill();

    const cached = await play('demo-user', 'tt-demo-0002', 'tv');
    assert.equal(cached.status, 200, 'a still-fresh cache entry answers without MySQL');

    const uncached = await play('premium-user', 'tt-demo-0002', 'android');
    assert.equal(uncached.status, 503);
    assert.equal(uncached.body.code, 'DEPENDENCY_UNAVAILABLE');
    assert.equal(uncached.headers.get('retry-after'), '5');
    assert.doesNotMatch(JSON.stringify(uncached.body), /SELECT|ECONNREFUSED|mysql/i);

    const critical = await health();
    assert.equal(critical.status, 503);
    assert.match(critical.body, /^fail .*mysql=(error\(\w+\)|timeout\(\d+ms\))/);
  });

  it('then after MySQL restarts, plays and health recover without restarting the node', async () => {
    await mariadb.restart();
    await playsAgain('plays to succeed after MySQL returns', 'premium-user', 'tt-demo-0002', 'android');
    // Bounded, not one sample: a stall of a busy machine may warn for a moment (lag, or a Redis
    // command past its deadline); MySQL must be back and everything pass.
    await healthPasses('health to pass after MySQL returns');
  });
});

describe('when MySQL stalls (SIGSTOP)', () => {
  it('then an uncached play fails fast with 503 instead of hanging, and recovers after resume', async () => {
    await mariadb.pause();
    try {
      const result = await play('mobile-user', 'tt-demo-0002', 'ios');
      assert.equal(result.status, 503);
      // queryTimeoutMs is 500 here; without it the play would hang until the client's 10 s abort.
      assert.ok(result.ms < 5000, `play took ${result.ms} ms with MySQL stalled`);
      const critical = await health();
      assert.equal(critical.status, 503);
    } finally {
      await mariadb.resume();
    }
    await playsAgain('plays to succeed after MySQL resumes', 'mobile-user', 'tt-demo-0002', 'ios');
  });
});

describe('when both are down and then restored', () => {
  it('then the node serves again without a restart', async () => {
    await Promise.all([mariadb.kill(), redis.kill()]);
    assert.equal((await play('sd-buyer', 'tt-demo-0001')).status, 503);
    assert.equal((await health()).status, 503);
    await Promise.all([mariadb.restart(), redis.restart()]);
    await healthPasses('health to pass', 8000);
    assert.equal((await play('sd-buyer', 'tt-demo-0001')).status, 200);
  });
});
