// `watcher exclude` and the floor (issue #10 item 2): excluding the last eligible nodes emptied DNS
// with exit 0, and a misspelt node was accepted silently. The floor now protects against exclusions
// too (the plan's own rule), --force overrides, and an unknown node is excluded with a warning.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kvGet, publishedNodes, startWatcherWorld, watcherCli, type WatcherWorld } from './harness.ts';

let world: WatcherWorld;
const ALL = ['api-node-1', 'api-node-2', 'api-node-3'];

const inDns = () => [...publishedNodes(world).keys()].sort();
const exclusionOf = (node: string) => kvGet(world, `st-api/dns/excluded/${node}`);

before(async () => {
  world = await startWatcherWorld({ minHealthy: 2 });
  for (const [i, node] of ALL.entries()) {
    const handle = await world.consul.addNode(node, `192.0.2.${i + 1}`);
    // No check: the instance is passing while its node's serfHealth passes.
    const response = await fetch(`${handle.agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'st-api', ID: 'st-api', Port: 8080 }),
    });
    assert.equal(response.status, 200);
  }
  assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
  assert.deepEqual(inDns(), ALL);
});

after(async () => {
  await world.stop();
});

describe('exclude and the floor', () => {
  it('when an exclusion leaves as many eligible nodes as the floor, then it goes ahead', async () => {
    const result = await watcherCli(world, ['exclude', 'api-node-1', '--reason', 'kernel upgrade', '--by', 'oncall']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(inDns(), ['api-node-2', 'api-node-3']);
  });

  it('when an exclusion would leave fewer eligible nodes than the floor, then it is refused with exit 77, says what would happen, and changes nothing', async () => {
    const result = await watcherCli(world, ['exclude', 'api-node-2', '--reason', 'disk', '--by', 'oncall']);
    assert.equal(result.code, 77, result.stderr);
    assert.match(result.stderr, /refusing to exclude api-node-2: 1 node\(s\) would stay eligible \(api-node-3\), fewer than minHealthy 2/);
    assert.match(result.stderr, /DNS would go from 2 node\(s\) \(api-node-2, api-node-3\) to 1 \(api-node-3\)/);
    assert.match(result.stderr, /--force/);
    assert.equal(await exclusionOf('api-node-2'), undefined, 'no exclusion recorded');
    assert.deepEqual(inDns(), ['api-node-2', 'api-node-3']);
    // --no-apply only postpones the run; the exclusion would still take DNS below the floor.
    assert.equal((await watcherCli(world, ['exclude', 'api-node-2', '--reason', 'disk', '--no-apply'])).code, 77);
    assert.equal(await exclusionOf('api-node-2'), undefined);
  });

  it('when the last eligible nodes are excluded, then DNS is never emptied without --force', async () => {
    assert.equal((await watcherCli(world, ['exclude', 'api-node-3', '--reason', 'disk'])).code, 77);
    assert.deepEqual(inDns(), ['api-node-2', 'api-node-3']);
  });

  it('when --force is given, then the exclusion is recorded and applied, and the consequence is still printed', async () => {
    const result = await watcherCli(world, ['exclude', 'api-node-2', '--reason', 'disk failing', '--by', 'oncall', '--force']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /excluding api-node-2 with --force: 1 node\(s\) would stay eligible/);
    assert.match((await exclusionOf('api-node-2')) ?? '', /disk failing/);
    assert.deepEqual(inDns(), ['api-node-3']);
    // Below the floor, but the floor keeps nothing: the other published node is the excluded one.
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { belowFloor: boolean; floorEngaged: boolean };
    assert.deepEqual([status.belowFloor, status.floorEngaged], [true, false]);
  });

  it('when the node is unknown to Consul (misspelt, or not registered yet), then it is excluded with a warning and exit 0, even below the floor', async () => {
    const result = await watcherCli(world, ['exclude', 'api-node-99', '--reason', 'new node, not verified', '--no-apply']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /warning: Consul has no st-api instance on node api-node-99 \(known: api-node-1, api-node-2, api-node-3\); excluding it anyway/,
    );
    assert.match((await exclusionOf('api-node-99')) ?? '', /new node, not verified/);
    assert.doesNotMatch(result.stderr, /refusing/, 'it takes nothing out of DNS, so the floor does not stand in the way');
  });

  it('when Route53 cannot be reached, then exclude fails as unavailable and records nothing, unless --force, which records it with a warning', async () => {
    // Port 1 on loopback: nothing listens, every Route53 call is refused.
    const unreachable = { AWS_ENDPOINT_URL_ROUTE_53: 'http://127.0.0.1:1' };
    try {
      const refused = await watcherCli(world, ['exclude', 'api-node-98', '--reason', 'new node', '--no-apply'], { env: unreachable });
      assert.equal(refused.code, 69, refused.stderr);
      assert.equal(await exclusionOf('api-node-98'), undefined, 'nothing recorded without --force');
      const forced = await watcherCli(world, ['exclude', 'api-node-98', '--reason', 'new node', '--no-apply', '--force'], {
        env: unreachable,
      });
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stderr, /warning: cannot work out what excluding api-node-98 would do to DNS .*excluding it anyway \(--force\)/);
      assert.match((await exclusionOf('api-node-98')) ?? '', /new node/);
    } finally {
      Object.assign(process.env, world.env); // watcherCli leaves its environment in process.env
    }
  });

  it('when the nodes are included again, then DNS holds all three', async () => {
    for (const node of ['api-node-1', 'api-node-2', 'api-node-98', 'api-node-99'])
      assert.equal((await watcherCli(world, ['include', node])).code, 0);
    assert.deepEqual(inDns(), ALL);
  });
});
