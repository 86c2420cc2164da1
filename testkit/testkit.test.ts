// The fault tests elsewhere are only as good as these launchers: prove the
// servers are real, die for real, stall for real and come back.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Redis as RedisClient } from 'ioredis';
import mysql from 'mysql2/promise';
import { startMariaDb, type MariaDbServer } from './mariadb.ts';
import { statusApartFromLag } from './health.ts';
import { GiveUp, freePort, killRecordedPids, makeTempDir, procState, spawnServer, waitFor } from './processes.ts';
import { pingRedis, startRedis } from './redis.ts';

async function connect(db: MariaDbServer): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({ ...db.connectionOptions(), connectTimeout: 2_000 });
  // A server killed under an idle connection emits 'error'; unhandled, it would crash the test file.
  connection.on('error', () => undefined);
  return connection;
}

async function query<T>(db: MariaDbServer, sql: string, values: unknown[] = []): Promise<T> {
  const connection = await connect(db);
  try {
    const [rows] = await connection.query(sql, values);
    return rows as T;
  } finally {
    connection.destroy();
  }
}

async function redisClient(port: number, extra: { commandTimeout?: number } = {}): Promise<RedisClient> {
  const client = new RedisClient({
    lazyConnect: true,
    host: '127.0.0.1',
    port,
    // Fail fast instead of queueing while the server is down: tests need to see the failure.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    retryStrategy: (times) => (times > 50 ? null : 100),
    ...extra,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describe('processes', () => {
  it('when a probe never settles, then waitFor gives up at its deadline', async () => {
    const started = Date.now();
    await assert.rejects(
      waitFor(() => new Promise<boolean>(() => undefined), { timeoutMs: 200, what: 'a hanging probe' }),
      /timed out after \d+ ms \(1 attempts\) waiting for a hanging probe/,
    );
    assert.ok(Date.now() - started < 1_000);
  });

  it('when a probe throws GiveUp, then waitFor stops at once', async () => {
    let calls = 0;
    await assert.rejects(
      waitFor(
        () => {
          calls++;
          throw new GiveUp('server died');
        },
        { timeoutMs: 5_000, what: 'x' },
      ),
      /gave up waiting for x: server died/,
    );
    assert.equal(calls, 1);
  });

  it('when freePort is asked twice, then it hands out loopback ports other than the shared servers', async () => {
    const ports = [await freePort(), await freePort()];
    for (const port of ports) assert.ok(port > 1024 && ![3306, 6379, 26379].includes(port));
  });

  it('when a recorded server outlives its test, then killRecordedPids kills it', async (t) => {
    const runDir = await makeTempDir('st-runner');
    const previous = process.env['ST_TEST_RUN_DIR'];
    process.env['ST_TEST_RUN_DIR'] = runDir;
    const dir = await makeTempDir('st-sleep');
    let sleeper;
    try {
      sleeper = await spawnServer({ name: 'sleep', command: 'sleep', args: ['60'], logFile: join(dir, 'log') });
    } finally {
      if (previous === undefined) delete process.env['ST_TEST_RUN_DIR'];
      else process.env['ST_TEST_RUN_DIR'] = previous;
    }
    t.after(() => sleeper.signal('SIGKILL'));
    assert.ok(existsSync(join(runDir, 'pids', `${sleeper.pid}.json`)));
    sleeper.signal('SIGSTOP'); // a paused leftover must die too
    const killed = await killRecordedPids(runDir);
    assert.deepEqual(killed, [{ pid: sleeper.pid, name: 'sleep' }]);
    const exit = await sleeper.waitForExit(5_000);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(!existsSync(join(runDir, 'pids', `${sleeper.pid}.json`)), 'registry entry removed on exit');
  });
});

/** Starts a server for test `t`, says in its diagnostics how long the start took, and stops it after the test. */
async function startForTest<S extends { port: number; stop(): Promise<void> }>(
  t: TestContext,
  name: string,
  start: () => Promise<S>,
): Promise<S> {
  const started = Date.now();
  const server = await start();
  t.diagnostic(`${name} took ${Date.now() - started} ms (port ${server.port})`);
  t.after(() => server.stop());
  return server;
}

describe('mariadb', () => {
  it('when MariaDB is started, then user+password over 127.0.0.1 TCP can write and read', async (t) => {
    const db = await startForTest(t, 'startMariaDb', startMariaDb);
    assert.equal(db.host, '127.0.0.1');
    assert.notEqual(db.port, 3306);
    const rows = await query<{ user: string; charset: string }[]>(db, 'SELECT CURRENT_USER() AS user, @@character_set_server AS charset');
    assert.deepEqual(rows, [{ user: `${db.user}@127.0.0.1`, charset: 'utf8mb4' }]);
    if (process.env['ST_TEST_RUN_DIR'] !== undefined) {
      assert.ok(existsSync(join(process.env['ST_TEST_RUN_DIR'], 'pids', `${db.pid}.json`)), 'pid recorded');
    }
  });

  it('when MariaDB is killed -9, then connections fail, and when restarted, committed data is back on the same port', async (t) => {
    const db = await startMariaDb();
    t.after(() => db.stop());
    await query(db, 'CREATE DATABASE st');
    await query(db, 'CREATE TABLE st.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
    await query(db, "INSERT INTO st.t VALUES (1, 'before crash')");
    const survivor = await connect(db);
    const { port, pid } = db;

    await db.kill();
    assert.equal(procState(pid), null, 'process is gone');
    await assert.rejects(survivor.query('SELECT 1'), 'open connection fails');
    survivor.destroy();
    await assert.rejects(connect(db), { code: 'ECONNREFUSED' });

    const restartStarted = Date.now();
    await db.restart();
    t.diagnostic(`restart after SIGKILL (crash recovery) took ${Date.now() - restartStarted} ms`);
    assert.equal(db.port, port);
    assert.notEqual(db.pid, pid);
    assert.deepEqual(await query(db, 'SELECT id, v FROM st.t'), [{ id: 1, v: 'before crash' }]);
  });

  it('when MariaDB is paused, then a query times out, and when resumed, it answers again', async (t) => {
    const db = await startMariaDb();
    t.after(() => db.stop());
    const connection = await connect(db);
    t.after(() => connection.destroy());

    await db.pause();
    assert.equal(procState(db.pid), 'T');
    await assert.rejects(connection.query({ sql: 'SELECT 1', timeout: 300 }), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' });

    await db.resume();
    assert.deepEqual(await query(db, 'SELECT 1 AS one'), [{ one: 1 }]);
  });

  it('when MariaDB is stopped and restarted, then data persists and the pid changes', async (t) => {
    const db = await startMariaDb();
    t.after(() => db.stop());
    await query(db, 'CREATE DATABASE keep');
    const pid = db.pid;
    const restartStarted = Date.now();
    await db.restart();
    t.diagnostic(`graceful restart took ${Date.now() - restartStarted} ms`);
    assert.notEqual(db.pid, pid);
    const rows = await query<{ Database: string }[]>(db, "SHOW DATABASES LIKE 'keep'");
    assert.equal(rows.length, 1);
  });
});

describe('redis', () => {
  it('when Redis is started, then a client can set and get on its port', async (t) => {
    const redis = await startForTest(t, 'startRedis', startRedis);
    assert.notEqual(redis.port, 6379);
    const client = await redisClient(redis.port);
    t.after(() => client.disconnect());
    await client.set('k', 'v');
    assert.equal(await client.get('k'), 'v');
  });

  it('when Redis is killed -9, then commands fail, and when restarted, it answers on the same port', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const client = await redisClient(redis.port);
    t.after(() => client.disconnect());
    await client.set('k', 'v');
    const { port, pid } = redis;

    await redis.kill();
    assert.equal(procState(pid), null);
    await assert.rejects(client.get('k'));
    await assert.rejects(pingRedis(port), { code: 'ECONNREFUSED' });

    await redis.restart();
    assert.equal(redis.port, port);
    assert.notEqual(redis.pid, pid);
    // The client reconnects by itself; no persistence, so the key is gone.
    await waitFor(() => client.status === 'ready', { timeoutMs: 5_000, what: 'client to reconnect' });
    assert.equal(await client.get('k'), null);
  });

  it('when Redis is paused, then a command times out, and when resumed, it answers again', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const client = await redisClient(redis.port, { commandTimeout: 300 });
    t.after(() => client.disconnect());
    assert.equal(await client.ping(), 'PONG');

    await redis.pause();
    await assert.rejects(client.ping(), /Command timed out/);
    await assert.rejects(pingRedis(redis.port, 300), /no PING reply/);

    await redis.resume();
    assert.equal(await client.ping(), 'PONG');
  });

  it('when Redis is started with AOF on, then restart() keeps its data', async (t) => {
    const redis = await startRedis({ extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    t.after(() => redis.stop());
    const client = await redisClient(redis.port);
    t.after(() => client.disconnect());
    await client.set('k', 'kept');
    await redis.kill();
    await redis.restart();
    await waitFor(() => client.status === 'ready', { timeoutMs: 5_000, what: 'client to reconnect' });
    assert.equal(await client.get('k'), 'kept');
  });
});

describe('statusApartFromLag', () => {
  it('when the only warning is the lag probe, then the node counts as passing', () => {
    assert.equal(
      statusApartFromLag({ status: 429, body: 'warn node=serving mysql=embedded redis=ok(0.4ms,master) keys=ok(4) lag=high(250ms)' }),
      200,
    );
    assert.equal(statusApartFromLag({ status: 200, body: 'ok node=serving mysql=ok(1.2ms) redis=off keys=ok(4) lag=ok(3ms)' }), 200);
  });
  it('when another probe warns or fails, then its status stands, lag or not', () => {
    assert.equal(
      statusApartFromLag({
        status: 429,
        body: 'warn node=serving mysql=embedded redis=down(resolving:enotfound) keys=ok(4) lag=high(250ms)',
      }),
      429,
    );
    assert.equal(
      statusApartFromLag({ status: 429, body: 'warn node=serving mysql=embedded redis=not-master(slave) keys=ok(4) lag=ok(3ms)' }),
      429,
    );
    assert.equal(
      statusApartFromLag({ status: 429, body: 'warn node=serving mysql=embedded redis=error(econnreset) keys=expiring(k1) lag=ok(3ms)' }),
      429,
    );
    assert.equal(statusApartFromLag({ status: 503, body: 'fail node=draining mysql=embedded redis=off keys=ok(4) lag=high(250ms)' }), 503);
  });
});
