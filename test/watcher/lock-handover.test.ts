// The lock between watchers when its holder dies, is slowed, or loses its session: a killed holder
// frees st-api/dns/lock within 2 × session TTL + lock-delay, a slow holder catches up with changes
// made while it ran, and a holder whose session is gone stops before writing. Real watcher processes
// against the Consul double (sessions reaped at 2 × TTL, Consul's upper bound) and the Route53 double.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import {
  addApiNodes,
  configFileWith,
  healthSnapshot,
  kvGet,
  publishedNodes,
  RECORD,
  registerApiNode,
  spawnWatcher,
  stApiChecks,
  startWatcherWorld,
  stopWorldAndNodes,
  waitForPublished,
  watcherCli,
  type WatcherWorld,
} from './harness.ts';

let world: WatcherWorld;
const nodes = new Map<string, TestNode>();
const ALL = ['api-node-1', 'api-node-2', 'api-node-3', 'api-node-4'];

/** A watcher process we can kill: as Consul runs a handler, or as the reconcile timer runs. */
function startWatcher(argv: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  return spawnWatcher(world, argv, { ...options, timeoutMs: 120_000 });
}

/** The session holding st-api/dns/lock, if any. */
async function lockSession(): Promise<string | undefined> {
  const response = await fetch(`${world.consul.httpAddr}/v1/kv/st-api/dns/lock`);
  if (response.status === 404) return undefined;
  const [entry] = (await response.json()) as { Session?: string }[];
  return entry?.Session;
}

async function waitForLockHeld(what: string): Promise<string> {
  return waitFor(async () => lockSession(), { timeoutMs: 30_000, intervalMs: 50, what: `${what} to hold st-api/dns/lock` });
}

const snapshot = () => healthSnapshot(world);

async function checkStatus(node: string, status: 'passing' | 'critical'): Promise<void> {
  await waitFor(async () => (await stApiChecks(world, node))?.some((check) => check.Status === status) === true || undefined, {
    timeoutMs: 20_000,
    intervalMs: 50,
    what: `${node} to be ${status} in Consul`,
  });
}

async function critical(node: string): Promise<void> {
  await nodes.get(node)?.close();
  await checkStatus(node, 'critical');
}

function status(): Promise<{ appliedIndex: number; consulIndex: number; result: string; message: string }> {
  return kvGet(world, 'st-api/dns/status').then(
    (text) => JSON.parse(text ?? '{}') as { appliedIndex: number; consulIndex: number; result: string; message: string },
  );
}

before(async () => {
  // No lockWaitMs: JSON drops an undefined key, so the watcher runs with its default, as in production.
  world = await startWatcherWorld({ lockWaitMs: undefined });
  await addApiNodes(world, nodes, ALL, '127.0.3.');
  for (const name of ALL) await checkStatus(name, 'passing');
  assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
  await waitForPublished(world, ALL, 'all nodes published', 30_000);
});

after(() => stopWorldAndNodes(world, nodes));

beforeEach(() => world.route53.clearFaults());

describe('a holder killed mid-run', () => {
  it('when the holder is killed with SIGKILL while holding the lock, then a handler fired right after it gets the lock within the default lockWaitMs, exits 0 and DNS matches health, with no reconcile', async () => {
    await critical('api-node-4');
    const fresh = await snapshot();
    // The holder reads Route53 slowly, so it is mid-run (lock held, nothing written) when killed.
    world.route53.injectFault({ kind: 'latency', ms: 15_000, operation: 'ListResourceRecordSets', count: 1 });
    const holder = startWatcher(['handle'], { stdin: fresh.stdin, env: { CONSUL_INDEX: fresh.index } });
    await waitForLockHeld('the first handler');
    holder.child.kill('SIGKILL');
    assert.equal((await holder.done).signal, 'SIGKILL');
    world.route53.clearFaults();

    // The next firing: its session waits out the dead holder's (2 × 10 s TTL + 1 s lock-delay here).
    const next = startWatcher(['handle'], { stdin: fresh.stdin, env: { CONSUL_INDEX: fresh.index } });
    const result = await next.done;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2', 'api-node-3']);
    assert.ok((await status()).appliedIndex >= Number(fresh.index));
  });
});

describe('a holder slowed by Route53 while Consul changes', () => {
  it('when a node goes critical while the holder is throttled and the waiting handler gives up (75), then the holder catches up before releasing: the critical node is out of DNS when it exits', async () => {
    // Drift the holder has to repair, so it writes to Route53; its change call is slow, then throttled.
    world.route53.deleteRecord(world.zoneId, { name: RECORD, type: 'A', setIdentifier: 'st-api/api-node-1/st-api' });
    // Longer than 2 × session TTL: without renewing, the holder would lose its session meanwhile.
    world.route53.injectFault({ kind: 'latency', ms: 25_000, operation: 'ChangeResourceRecordSets', count: 1 });
    world.route53.injectFault({ kind: 'throttling', operation: 'ChangeResourceRecordSets', count: 3 });
    const startedAt = Date.now();
    const holder = startWatcher(['reconcile']);
    await waitForLockHeld('the reconcile run');
    // It has read Consul's health once it lists Route53's records.
    await waitFor(
      () => world.route53.calls().some((call) => call.operation === 'ListResourceRecordSets' && call.at >= startedAt) || undefined,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the holder to list the records' },
    );

    await critical('api-node-3');
    const fresh = await snapshot();
    const waiter = await startWatcher(['handle', '--config', configFileWith(world, { lockWaitMs: 2000 })], {
      stdin: fresh.stdin,
      env: { CONSUL_INDEX: fresh.index },
    }).done;
    assert.equal(waiter.code, 75, waiter.stderr);
    assert.match(waiter.stderr, /another watcher held st-api\/dns\/lock/);
    assert.ok(holder.running(), 'the holder still held the lock when the handler gave up');

    const result = await holder.done;
    assert.equal(result.code, 0, result.stderr);
    // At its exit, not eventually: no other run is coming for this change.
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
    const after = await status();
    assert.ok(after.appliedIndex >= Number(fresh.index), `appliedIndex ${after.appliedIndex} covers the handler's index ${fresh.index}`);
    assert.equal(after.consulIndex, after.appliedIndex);
    assert.match(after.message, /caught up from Consul index \d+ to \d+/);
    assert.ok(
      world.route53
        .calls()
        .some((call) => call.operation === 'ChangeResourceRecordSets' && call.errorCode === 'Throttling' && call.at >= startedAt),
      'the holder was throttled',
    );
  });
});

describe('a holder that lost its session', () => {
  it('when the session is invalidated mid-run, then the renew fails and the run stops before writing: exit 75, DNS unchanged, the lock free for others', async () => {
    world.route53.deleteRecord(world.zoneId, { name: RECORD, type: 'A', setIdentifier: 'st-api/api-node-2/st-api' });
    const dns = JSON.stringify(world.route53.records(world.zoneId));
    // Longer than the renew period (TTL/2 = 5 s), so a renew runs while the holder waits on Route53.
    world.route53.injectFault({ kind: 'latency', ms: 12_000, operation: 'ListResourceRecordSets', count: 1 });
    const holder = startWatcher(['reconcile']);
    const session = await waitForLockHeld('the reconcile run');
    // As Consul does when a session's TTL lapses or an operator destroys it.
    assert.equal((await fetch(`${world.consul.httpAddr}/v1/session/destroy/${session}`, { method: 'PUT' })).status, 200);

    const result = await holder.done;
    assert.equal(result.code, 75, result.stderr);
    assert.match(result.stderr, /LockLostError/);
    assert.equal(JSON.stringify(world.route53.records(world.zoneId)), dns, 'nothing written after the lock was lost');

    const repaired = await watcherCli(world, ['reconcile']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
  });
});

describe('catching up within the run’s deletion cap', () => {
  it('when a second node goes critical during a run that used its whole maxDeletesPerRun, then the catch-up defers that deletion instead of widening the blast radius', async () => {
    // Nodes 3 and 4 back, all four in DNS.
    for (const name of ['api-node-3', 'api-node-4']) {
      const node = await startTestNode();
      nodes.set(name, node);
      await registerApiNode(world, name, `127.0.3.${name.slice(-1)}`, node);
      await checkStatus(name, 'passing');
    }
    const capped = configFileWith(world, { maxDeletesPerRun: 1, minHealthy: 1 });
    assert.equal((await watcherCli(world, ['reconcile', '--config', capped])).code, 0);
    await waitForPublished(world, ALL, 'nodes 3 and 4 back');

    await critical('api-node-4');
    world.route53.injectFault({ kind: 'latency', ms: 15_000, operation: 'ChangeResourceRecordSets', count: 1 });
    const startedAt = Date.now();
    const holder = startWatcher(['reconcile', '--config', capped]);
    await waitForLockHeld('the reconcile run');
    await waitFor(
      () => world.route53.calls().some((call) => call.operation === 'ListResourceRecordSets' && call.at >= startedAt) || undefined,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the holder to list the records' },
    );
    await critical('api-node-3');

    const result = await holder.done;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      [...publishedNodes(world).keys()].sort(),
      ['api-node-1', 'api-node-2', 'api-node-3'],
      'one deletion this run; api-node-3 waits for the next',
    );
    const after = await status();
    assert.match(after.message, /caught up from Consul index/);
    assert.match(after.message, /1 deletion\(s\) deferred by the per-run cap/);

    assert.equal((await watcherCli(world, ['reconcile', '--config', capped])).code, 0);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
  });
});
