// Registrations that would break a run or mislead a reader, fed through `watcher handle` as the
// Consul watch feeds them: a name too long for a SetIdentifier, names with a slash, a newline and a
// bidi override, a scoped IPv6 address, and addresses that must never be published. Route53 takes a
// batch whole or not at all, so before item 3 of issue #10 one of them stopped every change of the
// run, the deletion of a dead node included. Loopback is refused here as in production.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nodeOf } from '../../watcher/plan/plan.ts';
import { kvGet, RECORD, startWatcherWorld, watcherCli, type WatcherWorld } from './harness.ts';

let world: WatcherWorld;
const LONG = 'n'.repeat(310);
const EVIL = 'evil\u202e\nnode';
// Anything a reader's terminal or the Consul UI would obey rather than show.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

interface Status {
  result: string;
  message: string;
  published: string[];
  skipped: { node: string; serviceId: string; reason: string }[];
}

async function register(node: string, address: string, tagged: Record<string, unknown> = {}): Promise<void> {
  const handle = await world.consul.addNode(node, address);
  // No check: the instance is passing (the node's serfHealth passes).
  const response = await fetch(`${handle.agentAddr}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'st-api', ID: 'st-api', Address: address, Port: 8080, TaggedAddresses: tagged }),
  });
  assert.equal(response.status, 200, await response.text());
}

/** The owned records in the zone: `<type> <node> <value>`, node read back from the SetIdentifier. */
function owned(): string[] {
  return world.route53
    .records(world.zoneId)
    .filter((set) => set.Name === RECORD && set.SetIdentifier?.startsWith('st-api/') === true)
    .map(
      (set) => `${set.Type ?? ''} ${nodeOf('st-api', { setIdentifier: set.SetIdentifier ?? '' })} ${set.ResourceRecords?.[0]?.Value ?? ''}`,
    )
    .sort();
}

before(async () => {
  world = await startWatcherWorld({ publishLoopback: false, minHealthy: 2 });
  await register('api-node-1', '192.0.2.1');
  await register('api-node-2', '192.0.2.2');
  await register(LONG, '192.0.2.10');
  await register('slash/node', '192.0.2.11');
  await register(EVIL, '192.0.2.12');
  await register('scoped', '192.0.2.13', { lan_ipv6: { Address: 'fe80::1%eth0', Port: 8080 } });
  await register('zero', '0.0.0.0');
  await register('broadcast', '255.255.255.255');
  await register('loopback', '127.0.0.1');
  // A node that died since the last run: its record must go in the same run.
  world.route53.setRecord(world.zoneId, {
    Name: RECORD,
    Type: 'A',
    SetIdentifier: 'st-api/api-node-9/st-api',
    MultiValueAnswer: true,
    TTL: 30,
    ResourceRecords: [{ Value: '192.0.2.9' }],
  });
});

after(async () => {
  await world.stop();
});

describe('hostile and invalid registrations', () => {
  let handled: Awaited<ReturnType<typeof watcherCli>>;
  let statusText = '';

  before(async () => {
    const response = await fetch(`${world.consul.httpAddr}/v1/health/service/st-api`);
    handled = await watcherCli(world, ['handle'], {
      stdin: await response.text(),
      env: { CONSUL_INDEX: response.headers.get('x-consul-index') ?? '1' },
    });
    statusText = (await kvGet(world, 'st-api/dns/status')) ?? '';
  });

  it('when they arrive through handle, then the run succeeds: the good ones are published and the dead node is deleted', () => {
    assert.equal(handled.code, 0, handled.stderr);
    assert.deepEqual(
      owned(),
      ['A api-node-1 192.0.2.1', 'A api-node-2 192.0.2.2', `A ${EVIL} 192.0.2.12`, 'A scoped 192.0.2.13', 'A slash/node 192.0.2.11'].sort(),
    );
  });

  it('when a SetIdentifier is written, then Route53 accepts it (≤128 characters) and it reads back as the exact node name', () => {
    const identifiers = world.route53.records(world.zoneId).flatMap((set) => (set.SetIdentifier === undefined ? [] : [set.SetIdentifier]));
    assert.ok(identifiers.includes('st-api/slash%2Fnode/st-api'), identifiers.join(' '));
    for (const identifier of identifiers) assert.match(identifier, /^[A-Za-z0-9._%/-]{1,128}$/);
  });

  it('when something is left out, then the status in Consul says which and why', () => {
    const status = JSON.parse(statusText) as Status;
    assert.deepEqual(
      status.skipped.map((s) => `${s.node}: ${s.reason}`).sort(),
      [
        `${LONG}: its SetIdentifier would be 324 characters; Route53 accepts at most 128 (shorten the node name or service id)`,
        'broadcast: A 255.255.255.255: broadcast',
        'loopback: A 127.0.0.1: loopback',
        'scoped: AAAA fe80::1%eth0: scoped address (zone index): Route53 refuses it',
        'zero: A 0.0.0.0: unspecified',
      ].sort(),
    );
    assert.match(status.message, /5 registration\(s\) or address\(es\) not publishable/);
  });

  it('when a node name holds a newline and a bidi override, then the KV status text and the logs show escapes, and the JSON still holds the exact name', () => {
    assert.doesNotMatch(statusText.replace(/\n */g, ''), RAW);
    assert.ok((JSON.parse(statusText) as Status).published.includes(EVIL));
    assert.ok(statusText.includes('evil\\u202e\\nnode'), 'the name as JSON escapes');
    const lines = handled.stderr.trim().split('\n');
    for (const line of lines) assert.doesNotMatch(line, RAW);
    assert.ok(
      lines.every((line) => JSON.parse(line) !== null),
      'every log line is one JSON line',
    );
  });

  it('when an operator runs plan and status, then the names are escaped and the skipped registrations are listed with their reasons', async () => {
    const plan = await watcherCli(world, ['plan']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.doesNotMatch(plan.stdout.replace(/\n/g, ''), RAW);
    assert.match(plan.stdout, /! SKIP {3}scoped \(st-api\): AAAA fe80::1%eth0: scoped address/);
    const planJson = await watcherCli(world, ['plan', '--json']);
    assert.doesNotMatch(planJson.stdout.replace(/\n */g, ''), RAW);
    assert.ok((JSON.parse(planJson.stdout) as { published: string[] }).published.includes(EVIL));

    const status = await watcherCli(world, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.doesNotMatch(status.stdout.replace(/\n/g, ''), RAW);
    assert.match(status.stdout, /^evil\\u202e\\u000anode +[\d.]+ +passing +yes +no$/m);
    assert.match(status.stdout, /^slash\/node +[\d.]+ +passing +yes +no$/m, 'the exact name, read back from its SetIdentifier');
    assert.match(status.stdout, /not publishable[^\n]*\n(?: {2}.*\n)*? {2}loopback \(st-api\): A 127\.0\.0\.1: loopback/);
    const statusJson = JSON.parse((await watcherCli(world, ['status', '--json'])).stdout) as {
      nodes: { node: string }[];
      skipped: unknown[];
      lastRun: unknown;
    };
    assert.equal(statusJson.skipped.length, 5);
    assert.ok(statusJson.nodes.some((row) => row.node === EVIL));
  });
});
