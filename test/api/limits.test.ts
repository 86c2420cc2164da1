// What a refused play costs: a viewer over the per-minute budget gets 429 for the price of the one
// rate-limit command, with no catalog query, no cache read and no new key (issue #10 item 7).
// Real MariaDB and Redis; the costs are read from the servers themselves.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { waitForWindowWithRoom } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';

const DATABASE = 'st_limits';
const PLAYS_PER_MINUTE = 3;
let mariadb: MariaDbServer;
let redis: RedisServer;
let node: TestNode;
let db: mysql.Connection;
let observer: Redis;

before(async () => {
  [mariadb, redis] = await Promise.all([startMariaDb(), startRedis()]);
  await createCatalogDatabase(mariadb, DATABASE, demoDataset(Date.now()));
  db = await mysql.createConnection({ ...mariadb.connectionOptions(), database: DATABASE });
  observer = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await observer.connect();
  node = await startTestNode({
    mysql: { server: mariadb, database: DATABASE },
    redis,
    overrides: { rateLimit: { playsPerMinute: PLAYS_PER_MINUTE } },
  });
});

after(async () => {
  await node.close();
  observer.disconnect();
  await db.end();
  await Promise.all([mariadb.stop(), redis.stop()]);
});

/** SELECTs the server has run, all connections together (SHOW STATUS itself is not a SELECT). */
async function selectsRun(): Promise<number> {
  const [rows] = await db.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Com_select'");
  return Number(rows[0]?.['Value']);
}

/** Calls per Redis command since start-up, from INFO commandstats (`cmdstat_get:calls=3,…`). */
async function redisCalls(): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await observer.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    calls.set(match[1] ?? '', Number(match[2]));
  return calls;
}

function callsSince(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [command, count] of after) {
    const added = count - (before.get(command) ?? 0);
    if (added > 0) delta[command] = added;
  }
  return delta;
}

describe('when a viewer over the budget keeps asking for invented content ids', () => {
  it('then each refusal is 429 and costs the one rate-limit command: no catalog query, no cache read, no new key', async () => {
    // All plays must fall in one clock minute, or the budget starts afresh midway.
    await waitForWindowWithRoom(60_000, 20_000);
    const token = node.tokenFor('id-guesser');
    const invented = (index: number) => ({ contentId: `tt-invented-${index}`, device: 'web' });

    for (let index = 0; index < PLAYS_PER_MINUTE; index += 1) {
      const response = await node.play(invented(index), token);
      assert.equal(response.status, 404, `play ${index} within the budget is looked up`);
    }

    const selectsBefore = await selectsRun();
    const keysBefore = await observer.dbsize();
    const callsBefore = await redisCalls();
    const refusals = 17;
    for (let index = PLAYS_PER_MINUTE; index < PLAYS_PER_MINUTE + refusals; index += 1) {
      const response = await node.play(invented(index), token);
      assert.equal(response.status, 429, `play ${index}`);
      assert.equal(((await response.json()) as { code: string }).code, 'RATE_LIMITED');
    }
    const calls = callsSince(callsBefore, await redisCalls());

    assert.equal((await selectsRun()) - selectsBefore, 0, 'catalog queries for refused plays');
    assert.equal((await observer.dbsize()) - keysBefore, 0, 'new Redis keys for refused plays');
    // The limiter's script (EVALSHA, or EVAL the first time) and the INCR inside it; the INFO
    // calls are this test's own. Nothing else: no cache GET, no SET of a miss.
    const { info = 0, evalsha = 0, eval: evalCalls = 0, incr = 0, ...others } = calls;
    assert.ok(info >= 1, JSON.stringify(calls));
    assert.equal(evalsha + evalCalls, refusals, `one limiter command per refusal: ${JSON.stringify(calls)}`);
    assert.equal(incr, refusals, JSON.stringify(calls));
    assert.deepEqual(others, {}, 'no other Redis command for refused plays');
  });
});
