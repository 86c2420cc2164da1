// Scenarios 4–8: concurrent and stale handlers, Route53 throttling and rejections, drift, hostile
// input, a lock held by another watcher. Real st-api nodes behind the Consul double's HTTP checks;
// the watcher CLI run as Consul runs it.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { waitFor } from '../../testkit/processes.ts';
import {
  addApiNodes,
  configFileWith,
  healthSnapshot,
  kvGet,
  kvPut,
  publishedNodes,
  registerApiNode,
  RECORD,
  stApiChecks,
  startWatcherWorld,
  stopWorldAndNodes,
  waitForPublished,
  watcherCli,
  watcherProcess,
  type WatcherWorld,
} from './harness.ts';

let world: WatcherWorld;
const nodes = new Map<string, TestNode>();
const ALL = ['api-node-1', 'api-node-2', 'api-node-3'];

const snapshot = () => healthSnapshot(world);

async function allChecks(status: 'passing' | 'critical', node: string): Promise<void> {
  await waitFor(async () => (await stApiChecks(world, node))?.every((check) => check.Status === status) === true || undefined, {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: `${node} to be ${status} in Consul`,
  });
}

before(async () => {
  // Rate limiting on, as in AWS; PENDING lasts 100 ms.
  world = await startWatcherWorld({ replanAttempts: 3 });
  await addApiNodes(world, nodes, ALL, '127.0.2.');
  for (const name of ALL) await allChecks('passing', name);
});

after(() => stopWorldAndNodes(world, nodes));

beforeEach(() => world.route53.clearFaults());

describe('scenario 4: concurrent handlers on different snapshots', () => {
  it('when an old snapshot arrives after a newer one, then DNS ends at the newest state', async () => {
    assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
    await waitForPublished(world, ALL, 'initial state');
    const old = await snapshot();

    // node-3 goes away for real: its server stops answering, its check turns critical.
    await nodes.get('api-node-3')?.close();
    await allChecks('critical', 'api-node-3');
    const fresh = await snapshot();
    assert.ok(Number(fresh.index) > Number(old.index));

    // Two agents' handlers at once, then a handler re-fired with the old data after an agent reload.
    const [a, b] = await Promise.all([
      watcherProcess(world, ['handle'], { stdin: fresh.stdin, env: { CONSUL_INDEX: fresh.index } }),
      watcherProcess(world, ['handle'], { stdin: old.stdin, env: { CONSUL_INDEX: old.index } }),
    ]);
    assert.deepEqual([a.code, b.code], [0, 0], a.stderr + b.stderr);
    const late = await watcherProcess(world, ['handle'], { stdin: old.stdin, env: { CONSUL_INDEX: old.index } });
    assert.equal(late.code, 0, late.stderr);
    assert.match(late.stderr, /stale invocation/);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { appliedIndex: number };
    assert.ok(status.appliedIndex >= Number(fresh.index));

    // Bring node-3 back for the scenarios that follow.
    const node3 = await startTestNode();
    nodes.set('api-node-3', node3);
    await registerApiNode(world, 'api-node-3', '127.0.2.3', node3);
    await allChecks('passing', 'api-node-3');
  });
});

describe('scenario 5: Route53 throttles, then rejects a batch', () => {
  it('when a few calls are throttled and one batch is rejected, then the run converges within its retry bound', async () => {
    world.route53.injectFault({ kind: 'throttling', operation: 'ChangeResourceRecordSets', count: 2 });
    world.route53.injectFault({
      kind: 'invalidChangeBatch',
      messages: ['Tried to create resource record set but it already exists'],
      count: 1,
    });
    const result = await watcherCli(world, ['reconcile']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /re-planning/);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ALL);
  });

  it('when Route53 keeps throttling past the retry bound, then the run exits transient (75), DNS is unchanged, and the next reconcile repairs', async () => {
    await nodes.get('api-node-2')?.close();
    await allChecks('critical', 'api-node-2');
    world.route53.injectFault({ kind: 'throttling', operation: 'ChangeResourceRecordSets', count: 1000 });
    const failed = await watcherCli(world, ['reconcile']);
    assert.equal(failed.code, 75, failed.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ALL, 'DNS unchanged');
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { result: string };
    assert.match(status.result, /failed \(exit 75 transient\)/);

    world.route53.clearFaults();
    const repaired = await watcherCli(world, ['reconcile']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-3']);
    const node2 = await startTestNode();
    nodes.set('api-node-2', node2);
    await registerApiNode(world, 'api-node-2', '127.0.2.2', node2);
    await allChecks('passing', 'api-node-2');
    assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
  });
});

describe('scenario 6: drift', () => {
  it('when an owned record is deleted or edited by hand, then reconcile repairs it and never touches records it does not own', async () => {
    await waitForPublished(world, ALL, 'all published');
    const foreign = [
      {
        Name: RECORD,
        Type: 'A' as const,
        SetIdentifier: 'blue-green/api-node-9',
        MultiValueAnswer: true,
        TTL: 60,
        ResourceRecords: [{ Value: '192.0.2.9' }],
      },
      { Name: 'www.example.com.', Type: 'A' as const, TTL: 300, ResourceRecords: [{ Value: '192.0.2.80' }] },
    ];
    for (const set of foreign) world.route53.setRecord(world.zoneId, set);
    world.route53.deleteRecord(world.zoneId, { name: RECORD, type: 'A', setIdentifier: 'st-api/api-node-1/st-api' });
    world.route53.setRecord(world.zoneId, {
      Name: RECORD,
      Type: 'A',
      SetIdentifier: 'st-api/api-node-2/st-api',
      MultiValueAnswer: true,
      TTL: 3600,
      ResourceRecords: [{ Value: '198.51.100.7' }],
    });

    const plan = await watcherCli(world, ['plan']);
    assert.match(plan.stdout, /^ {2}\+ CREATE A +api-node-1 +127\.0\.2\.1 +passing, not in DNS yet$/m);
    assert.match(plan.stdout, /^ {2}~ UPSERT A +api-node-2 +127\.0\.2\.2 +in DNS as 198\.51\.100\.7 TTL 3600$/m);
    assert.match(plan.stdout, /\n\n1 to create, 1 to update, 0 to delete\n/, 'the counts after the records');

    const repaired = await watcherCli(world, ['reconcile', '--wait']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.match(repaired.stdout, /1 change\(s\) INSYNC/, 'the repair reached INSYNC');
    const published = publishedNodes(world);
    assert.equal(published.get('api-node-1'), '127.0.2.1');
    assert.equal(published.get('api-node-2'), '127.0.2.2');
    const records = world.route53.records(world.zoneId);
    for (const set of foreign) {
      assert.ok(
        records.some(
          (record) =>
            record.Name === set.Name &&
            record.SetIdentifier === set.SetIdentifier &&
            record.ResourceRecords?.[0]?.Value === set.ResourceRecords[0]?.Value,
        ),
        `${set.Name} ${set.SetIdentifier ?? ''} untouched`,
      );
    }
  });
});

describe('scenario 7: hostile input and unreachable dependencies', () => {
  const before = () => JSON.stringify(world.route53.records(world.zoneId));

  const stdins: [string, string][] = [
    ['garbage', 'Failed to run watch handler: broken pipe\n'],
    ['empty', ''],
    ['truncated', '[{"Node":{"Node":"api-node-1","Address":"10.0.0.1"},"Service":{"ID":"st-api","Serv'],
  ];
  for (const [what, stdin] of stdins) {
    it(`when stdin is ${what}, then handle exits 65 (bad input) and DNS is unchanged`, async () => {
      const dns = before();
      const result = await watcherCli(world, ['handle'], { stdin, env: { CONSUL_INDEX: '999999' } });
      assert.equal(result.code, 65, result.stderr);
      assert.match(result.stderr, /not JSON|not a health\/service answer/);
      assert.equal(before(), dns);
    });
  }

  it('when CONSUL_INDEX is missing, then handle exits 65 and says to use reconcile', async () => {
    const result = await watcherCli(world, ['handle'], { stdin: (await snapshot()).stdin, env: { CONSUL_INDEX: '' } });
    assert.equal(result.code, 65);
    assert.match(result.stderr, /reconcile/);
  });

  it('when an exclusion is written by hand (not JSON), then it still excludes the node, the run succeeds, and status flags it with its text', async () => {
    // The natural way to take a node out by hand: consul kv put st-api/dns/excluded/api-node-2 maintenance
    await kvPut(world, 'st-api/dns/excluded/api-node-2', 'maintenance\u202e by bob\n');
    const result = await watcherCli(world, ['reconcile']);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as {
      eligible: string[];
      excluded: string[];
      handWrittenExclusions: string[];
      message: string;
    };
    assert.ok(status.excluded.includes('api-node-2'));
    assert.deepEqual(status.handWrittenExclusions, ['api-node-2']);
    assert.ok(!status.eligible.includes('api-node-2'), 'a hand-written exclusion keeps the node out like any other');
    assert.match(status.message, /hand-written exclusion\(s\), not JSON: api-node-2/);
    const shown = await watcherCli(world, ['status']);
    assert.equal(shown.code, 0, shown.stderr);
    // Its text is the reason, with the bidi override and the newline shown as escapes, never obeyed.
    assert.match(shown.stdout, /api-node-2 .*yes: maintenance\\u202e by bob \(hand-written KV value\)/);

    await fetch(`${world.consul.httpAddr}/v1/kv/st-api/dns/excluded/api-node-2`, { method: 'DELETE' });
    assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
    const after = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { eligible: string[]; handWrittenExclusions: string[] };
    assert.ok(after.eligible.includes('api-node-2'));
    assert.deepEqual(after.handWrittenExclusions, []);
  });

  it('when Consul is unreachable, then the run exits 69 (unavailable) and DNS is unchanged', async () => {
    const dns = before();
    const result = await watcherCli(world, ['reconcile'], { env: { CONSUL_HTTP_ADDR: '127.0.0.1:1' } });
    assert.equal(result.code, 69, result.stderr);
    assert.equal(before(), dns);
  });

  it('when Route53 is unreachable, then the run exits 69 and the status in Consul says why', async () => {
    const result = await watcherCli(world, ['reconcile'], { env: { AWS_ENDPOINT_URL_ROUTE_53: 'http://127.0.0.1:1' } });
    assert.equal(result.code, 69, result.stderr);
    const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { result: string };
    assert.match(status.result, /failed \(exit 69 unavailable\)/);
    // Later tests and runs use the real endpoint again.
    process.env.AWS_ENDPOINT_URL_ROUTE_53 = world.env.AWS_ENDPOINT_URL_ROUTE_53 ?? '';
  });

  it('when the command line is wrong, then exit 64 with the usage text; --help exits 0', async () => {
    const bad = await watcherCli(world, ['exclude', 'api-node-1']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--reason/);
    const help = await watcherCli(world, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes:/);
  });

  it('when status is asked, then each node shows its Consul health, DNS presence and exclusion', async () => {
    await watcherCli(world, ['exclude', 'api-node-3', '--reason', 'kernel upgrade', '--by', 'oncall']);
    const status = await watcherCli(world, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /api-node-3\s+127\.0\.2\.3\s+passing\s+no\s+yes: kernel upgrade \(oncall, \d+s ago\)/);
    assert.match(status.stdout, /api-node-1\s+127\.0\.2\.1\s+passing\s+yes\s+no/);
    assert.match(status.stdout, /last run: .* exclude api-node-3 → /);
    await watcherCli(world, ['include', 'api-node-3']);
    await waitForPublished(world, ALL, 'node-3 back', 5000);
  });
});

describe('scenario 8: another watcher holds the lock', () => {
  it('when the lock stays held past lockWaitMs, then the run exits transient (75), DNS is unchanged, the status says why, and the next run repairs', async () => {
    assert.equal((await watcherCli(world, ['reconcile'])).code, 0);
    await waitForPublished(world, ALL, 'initial state');
    // Drift the run would repair if it got the lock.
    world.route53.deleteRecord(world.zoneId, { name: RECORD, type: 'A', setIdentifier: 'st-api/api-node-1/st-api' });
    const dns = JSON.stringify(world.route53.records(world.zoneId));

    // Another watcher (a handler on another agent) holds st-api/dns/lock through its own session.
    const consul = world.consul.httpAddr;
    const { ID: session } = (await (
      await fetch(`${consul}/v1/session/create`, {
        method: 'PUT',
        body: JSON.stringify({ Name: 'other watcher', TTL: '60s', LockDelay: '0s' }),
      })
    ).json()) as { ID: string };
    assert.equal(
      await (await fetch(`${consul}/v1/kv/st-api/dns/lock?acquire=${session}`, { method: 'PUT', body: '{"holder":"other"}' })).text(),
      'true',
    );
    try {
      const blocked = await watcherCli(world, ['reconcile', '--config', configFileWith(world, { lockWaitMs: 300 })]);
      assert.equal(blocked.code, 75, blocked.stderr);
      assert.match(blocked.stderr, /another watcher held st-api\/dns\/lock for more than 300 ms/);
      assert.equal(JSON.stringify(world.route53.records(world.zoneId)), dns, 'DNS unchanged');
      const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { result: string; message: string };
      assert.match(status.result, /failed \(exit 75 transient\)/);
      assert.match(status.message, /LockTimeoutError/);
    } finally {
      await fetch(`${consul}/v1/kv/st-api/dns/lock?release=${session}`, { method: 'PUT', body: '' });
      await fetch(`${consul}/v1/session/destroy/${session}`, { method: 'PUT' });
    }
    const repaired = await watcherCli(world, ['reconcile']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ALL);
  });
});
