// Scenarios 1–3, end to end: real st-api deep health → the Consul double's HTTP checks → its watch
// runner → the real `watcher handle` executable → the Route53 double.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';
import { waitFor } from '../../testkit/processes.ts';
import {
  kvGet,
  publishedNodes,
  registerApiNode,
  startWatcherWorld,
  waitForPublished,
  watcherProcess,
  WATCHER,
  type WatcherWorld,
} from './harness.ts';

let world: WatcherWorld;
let sharedDb: MariaDbServer;
let node2Db: MariaDbServer;
const nodes = new Map<string, TestNode>();

before(async () => {
  [sharedDb, node2Db] = await Promise.all([startMariaDb(), startMariaDb()]);
  await Promise.all([
    createCatalogDatabase(sharedDb, 'st_catalog', demoDataset(Date.now())),
    createCatalogDatabase(node2Db, 'st_catalog', demoDataset(Date.now())),
  ]);
  world = await startWatcherWorld();
  // node-2 has a database of its own, so it can fail alone; node-1 and node-3 share one.
  for (const [name, db] of [
    ['api-node-1', sharedDb],
    ['api-node-2', node2Db],
    ['api-node-3', sharedDb],
  ] as const) {
    const node = await startTestNode({ mysql: { server: db, database: 'st_catalog' } });
    nodes.set(name, node);
    await registerApiNode(world, name, `127.0.1.${name.slice(-1)}`, node);
  }
  world.consul.watch({
    node: 'api-node-1',
    type: 'service',
    service: 'st-api',
    args: [...WATCHER, 'handle'],
    env: world.env,
    cwd: process.cwd(),
  });
});

after(async () => {
  await world.stop();
  await Promise.all([...nodes.values()].map((node) => node.close()));
  await Promise.all([sharedDb.stop(), node2Db.stop()]);
});

describe('scenario 1: a node fails its deep health and recovers', () => {
  it('when the watch first fires, then every healthy node is published with its service address', async () => {
    await waitForPublished(world, ['api-node-1', 'api-node-2', 'api-node-3'], 'first run');
    assert.equal(publishedNodes(world).get('api-node-2'), '127.0.1.2');
  });

  it('when node-2 loses its database, then its record leaves DNS; when the database returns, so does the record', async () => {
    await node2Db.kill();
    await waitForPublished(world, ['api-node-1', 'api-node-3'], 'node-2 critical');
    await node2Db.restart();
    await waitForPublished(world, ['api-node-1', 'api-node-2', 'api-node-3'], 'node-2 recovered');
    const failed = world.consul.invocations().filter((invocation) => invocation.exitCode !== 0 && invocation.exitCode !== null);
    assert.deepEqual(
      failed.map((invocation) => invocation.output),
      [],
      'no handler run failed',
    );
  });
});

describe('scenario 2: a new node stays out of DNS until it is verified', () => {
  it('when node-4 registers while excluded, then it is never published; `include` publishes it', async () => {
    const exclude = await watcherProcess(world, [
      'exclude',
      'api-node-4',
      '--reason',
      'new node, not verified',
      '--by',
      'ci',
      '--no-apply',
    ]);
    assert.equal(exclude.code, 0, exclude.stderr);
    const node4 = await startTestNode({ mysql: { server: sharedDb, database: 'st_catalog' } });
    nodes.set('api-node-4', node4);
    await registerApiNode(world, 'api-node-4', '127.0.1.4', node4);
    // Let the check pass and the watch fire on it at least once.
    await waitFor(
      () =>
        world.consul
          .invocations()
          .some(
            (invocation) =>
              invocation.stdin.includes('api-node-4') &&
              invocation.stdin.includes('"Status":"passing","Notes":"","Output":"HTTP GET') &&
              invocation.exitCode === 0,
          ) || undefined,
      {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'a handler run that saw node-4 healthy',
      },
    );
    assert.equal(publishedNodes(world).has('api-node-4'), false);

    const include = await watcherProcess(world, ['include', 'api-node-4']);
    assert.equal(include.code, 0, include.stderr);
    assert.match(include.stdout, /api-node-4 included/);
    await waitForPublished(world, ['api-node-1', 'api-node-2', 'api-node-3', 'api-node-4'], 'node-4 included', 5000);
  });
});

describe('scenario 3: every node fails at once', () => {
  it('when all databases die, then the floor keeps two records and the log and the KV status say so', async () => {
    await Promise.all([sharedDb.kill(), node2Db.kill()]);
    // The checks turn critical one by one: on a loaded machine a run can see three nodes down and one
    // still passing (floor engaged, one node eligible). Wait for the run that saw them all down.
    await waitFor(
      async () => {
        const status = await kvGet(world, 'st-api/dns/status');
        if (status === undefined) return undefined;
        const parsed = JSON.parse(status) as { floorEngaged: boolean; eligible: string[] };
        return parsed.floorEngaged && parsed.eligible.length === 0 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the status to report the floor with no eligible node' },
    );
    await waitFor(() => publishedNodes(world).size === 2 || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'DNS to settle at the floor',
    });
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as {
      message: string;
      keptByFloor: string[];
      eligible: string[];
    };
    assert.match(status.message, /FLOOR ENGAGED/);
    assert.deepEqual(status.eligible, []);
    assert.equal(status.keptByFloor.length, 2);
    // The handler writes the KV status before it exits; the double records its output when it has exited.
    await waitFor(() => world.consul.invocations().some((invocation) => invocation.output.includes('FLOOR ENGAGED')) || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'a handler to have logged FLOOR ENGAGED',
    });

    await Promise.all([sharedDb.restart(), node2Db.restart()]);
    await waitForPublished(world, ['api-node-1', 'api-node-2', 'api-node-3', 'api-node-4'], 'recovery after the outage');
  });
});
