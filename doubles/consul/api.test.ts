// The HTTP API as production code sees it: through the real `consul` npm
// client where it has a call, raw HTTP elsewhere.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { sleep } from '../../testkit/processes.ts';
import { startConsulDouble, type ConsulDouble, type NodeHandle } from './double.ts';

const registration = {
  ID: 'st-api-1',
  Name: 'st-api',
  Tags: ['v1', 'http'],
  Address: '10.0.1.11',
  Port: 8080,
  Meta: { version: '1.4.2' },
  Weights: { Passing: 1, Warning: 1 },
  Check: { CheckID: 'st-api-1:ttl', Name: 'ttl', TTL: '30s' },
};

function clientFor(addr: string): Consul {
  const url = new URL(addr);
  return new Consul({ host: url.hostname, port: Number(url.port) });
}

/** The consul client resolves a `false` body as undefined (papi drops falsy values), so compare with true. */
async function kvSet(
  client: Consul,
  options: { key: string; value: string; cas?: number; flags?: number; acquire?: string; release?: string },
): Promise<boolean> {
  return (await client.kv.set(options)) === true;
}

async function put(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, {
    method: 'PUT',
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

describe('consul double HTTP API', () => {
  let consul: ConsulDouble;
  let node1: NodeHandle;
  let client: Consul;

  before(async () => {
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0, initialIndex: 9000 });
    node1 = await consul.addNode('api-node-1', '10.0.1.11');
    client = clientFor(node1.agentAddr);
  });
  after(async () => {
    client.destroy();
    await consul.stop();
  });

  it('when a service is registered through the consul client, then health shows the fixture shape with serfHealth and the critical new check', async () => {
    await client.agent.service.register({
      id: 'st-api-1',
      name: 'st-api',
      tags: ['v1', 'http'],
      address: '10.0.1.11',
      port: 8080,
      meta: { version: '1.4.2' },
      check: { checkid: 'st-api-1:ttl', name: 'ttl', ttl: '30s', notes: 'n', timeout: '1s' },
    });
    const list = (await client.health.service('st-api')) as unknown as Record<
      string,
      Record<string, unknown> | Record<string, unknown>[]
    >[];
    assert.equal(list.length, 1);
    const entry = list[0]!;
    assert.deepEqual(Object.keys(entry), ['Node', 'Service', 'Checks']);
    const node = entry['Node'] as Record<string, unknown>;
    assert.equal(node['Node'], 'api-node-1');
    assert.equal(node['Datacenter'], 'dc1');
    assert.deepEqual(node['TaggedAddresses'], { lan: '10.0.1.11', lan_ipv4: '10.0.1.11', wan: '10.0.1.11', wan_ipv4: '10.0.1.11' });
    const service = entry['Service'] as Record<string, unknown>;
    assert.deepEqual(service['Weights'], { Passing: 1, Warning: 1 });
    assert.deepEqual(service['Proxy'], { MeshGateway: {}, Expose: {} });
    const checks = entry['Checks'] as Record<string, unknown>[];
    assert.deepEqual(
      checks.map((c) => [c['CheckID'], c['Status'], c['Type']]),
      [
        ['serfHealth', 'passing', ''],
        ['st-api-1:ttl', 'critical', 'ttl'],
      ],
    );
    assert.equal(checks[0]!['Output'], 'Agent alive and reachable');
  });

  it('when health is read raw, then the query-meta headers are present and the index is past the initial one', async () => {
    const res = await fetch(`${consul.httpAddr}/v1/health/service/st-api`);
    assert.equal(res.headers.get('x-consul-knownleader'), 'true');
    assert.equal(res.headers.get('x-consul-lastcontact'), '0');
    assert.ok(Number(res.headers.get('x-consul-index')) > 9000);
  });

  it('when a blocking health query waits and a check changes, then it returns early with a higher index', async () => {
    const first = await fetch(`${consul.httpAddr}/v1/health/service/st-api`);
    const index = Number(first.headers.get('x-consul-index'));
    const started = Date.now();
    const pending = fetch(`${consul.httpAddr}/v1/health/service/st-api?index=${index}&wait=5s`);
    await sleep(150);
    await put(`${node1.agentAddr}/v1/agent/check/pass/st-api-1:ttl?note=ok`);
    const res = await pending;
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    assert.ok(Date.now() - started < 4000);
    const body = (await res.json()) as { Checks: { CheckID: string; Status: string; Output: string }[] }[];
    assert.deepEqual(body[0]!.Checks[1], { ...body[0]!.Checks[1], Status: 'passing', Output: 'ok' });
  });

  it('when a blocking query sees no change, then it returns after about the wait with the same index', async () => {
    const first = await fetch(`${consul.httpAddr}/v1/health/service/st-api`);
    const index = Number(first.headers.get('x-consul-index'));
    const started = Date.now();
    const res = await fetch(`${consul.httpAddr}/v1/health/service/st-api?index=${index}&wait=300ms`);
    const elapsed = Date.now() - started;
    assert.equal(Number(res.headers.get('x-consul-index')), index);
    assert.ok(elapsed >= 280 && elapsed < 2000, `elapsed ${elapsed}`);
  });

  it('when the consul client blocks with index and wait, then it sees the next change', async () => {
    const meta: { LastIndex?: string } = {};
    const first = await fetch(`${consul.httpAddr}/v1/health/service/st-api`);
    meta.LastIndex = first.headers.get('x-consul-index') ?? '0';
    // The client's typings omit the blocking options it does send.
    const pending = client.health.service({ service: 'st-api', ...{ index: meta.LastIndex, wait: '3s' } });
    await sleep(100);
    await client.agent.check.warn({ id: 'st-api-1:ttl', note: 'slow' });
    const entries = (await pending) as { Checks: { Status: string }[] }[];
    assert.equal(entries[0]!.Checks[1]!.Status, 'warning');
  });

  it('when ?passing is asked, then an instance with a warning or maintenance check is absent', async () => {
    const passing = (await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?passing`)).json()) as unknown[];
    assert.equal(passing.length, 0, 'warning is not passing');
    await put(`${node1.agentAddr}/v1/agent/check/pass/st-api-1:ttl`);
    assert.equal(((await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?passing=1`)).json()) as unknown[]).length, 1);
    await client.agent.service.maintenance({ id: 'st-api-1', enable: true, reason: 'draining' });
    const all = (await (await fetch(`${consul.httpAddr}/v1/health/service/st-api`)).json()) as { Checks: Record<string, unknown>[] }[];
    const maintenance = all[0]!.Checks.find((c) => c['CheckID'] === '_service_maintenance:st-api-1');
    assert.deepEqual(
      {
        Name: maintenance?.['Name'],
        Status: maintenance?.['Status'],
        Type: maintenance?.['Type'],
        Notes: maintenance?.['Notes'],
        ServiceID: maintenance?.['ServiceID'],
      },
      { Name: 'Service Maintenance Mode', Status: 'critical', Type: 'maintenance', Notes: 'draining', ServiceID: 'st-api-1' },
    );
    assert.equal(((await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?passing`)).json()) as unknown[]).length, 0);
    await client.agent.service.maintenance({ id: 'st-api-1', enable: false });
    assert.equal(((await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?passing`)).json()) as unknown[]).length, 1);
  });

  it('when the node serfHealth fails, then passing drops the instance but the catalog still lists it', async () => {
    consul.setNodeCheck('api-node-1', 'critical');
    assert.equal(((await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?passing`)).json()) as unknown[]).length, 0);
    const catalog = (await client.catalog.service.nodes('st-api')) as Record<string, unknown>[];
    assert.equal(catalog.length, 1);
    assert.equal(catalog[0]!['ServiceID'], 'st-api-1');
    assert.deepEqual(catalog[0]!['ServiceWeights'], { Passing: 1, Warning: 1 });
    consul.setNodeCheck('api-node-1', 'passing');
  });

  it('when tag and filter are given, then only matching instances come back', async () => {
    const node2 = await consul.addNode('api-node-2', '10.0.1.12');
    await put(`${node2.agentAddr}/v1/agent/service/register`, {
      ...registration,
      ID: 'st-api-2',
      Tags: ['v2'],
      Address: '',
      Check: { TTL: '30s', Status: 'passing' },
    });
    const byTag = (await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?tag=v2`)).json()) as { Node: { Node: string } }[];
    assert.deepEqual(
      byTag.map((e) => e.Node.Node),
      ['api-node-2'],
    );
    const filter = encodeURIComponent('Node.Node == "api-node-1" and "v1" in Service.Tags');
    const byFilter = (await (await fetch(`${consul.httpAddr}/v1/health/service/st-api?filter=${filter}`)).json()) as {
      Node: { Node: string };
    }[];
    assert.deepEqual(
      byFilter.map((e) => e.Node.Node),
      ['api-node-1'],
    );
    const bad = await fetch(`${consul.httpAddr}/v1/health/service/st-api?filter=${encodeURIComponent('Node.Node ===')}`);
    assert.equal(bad.status, 400);
    const services = (await client.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual(services['st-api'], ['v1', 'http', 'v2']);
    assert.deepEqual(services['consul'], []);
    const nodes = (await client.catalog.node.list()) as { Node: string }[];
    assert.deepEqual(
      nodes.map((n) => n.Node),
      ['api-node-1', 'api-node-2', 'consul-server-1'],
    );
    const checks = (await (await fetch(`${node2.agentAddr}/v1/agent/checks`)).json()) as Record<string, { Status: string }>;
    assert.deepEqual(Object.keys(checks), ['service:st-api-2']);
    assert.equal(checks['service:st-api-2']!.Status, 'passing');
    const services2 = (await (await fetch(`${node2.agentAddr}/v1/agent/services`)).json()) as Record<
      string,
      { Service: string; Address: string }
    >;
    assert.deepEqual(Object.keys(services2), ['st-api-2']);
  });

  it('when a service is re-registered with replace-existing-checks, then dropped checks go and kept checks keep their state', async () => {
    await put(`${node1.agentAddr}/v1/agent/service/register`, {
      ...registration,
      Checks: [
        { CheckID: 'a', TTL: '30s', Status: 'passing' },
        { CheckID: 'b', TTL: '30s' },
      ],
      Check: undefined,
    });
    await put(`${node1.agentAddr}/v1/agent/check/warn/a?note=kept`);
    await put(`${node1.agentAddr}/v1/agent/service/register?replace-existing-checks`, {
      ...registration,
      Tags: ['v1', 'new'],
      Check: { CheckID: 'a', TTL: '30s' },
    });
    const checks = (await (await fetch(`${node1.agentAddr}/v1/agent/checks`)).json()) as Record<
      string,
      { Status: string; Output: string; ServiceTags: string[] }
    >;
    assert.deepEqual(Object.keys(checks).sort(), ['a']);
    assert.equal(checks['a']!.Status, 'warning');
    assert.equal(checks['a']!.Output, 'kept');
    assert.deepEqual(checks['a']!.ServiceTags, ['v1', 'new']);
  });

  it('when a TTL check gets an over-long update, then its output is cut with the captured note', async () => {
    const long = 'x'.repeat(5000);
    const res = await put(`${node1.agentAddr}/v1/agent/check/update/a`, { Status: 'passing', Output: long });
    assert.equal(res.status, 200);
    const checks = (await (await fetch(`${node1.agentAddr}/v1/agent/checks`)).json()) as Record<string, { Output: string }>;
    assert.equal(checks['a']!.Output, `${'x'.repeat(4096)} ... (captured 4096 of 5000 bytes)`);
    assert.equal((await put(`${node1.agentAddr}/v1/agent/check/pass/nope`)).status, 404);
  });

  it('when a service is deregistered, then it and its checks are gone and deregistering again is a no-op', async () => {
    await client.agent.service.deregister('st-api-1');
    await client.agent.service.deregister('st-api-1');
    const entries = (await client.health.service('st-api')) as { Service: { ID: string } }[];
    assert.deepEqual(
      entries.map((e) => e.Service.ID),
      ['st-api-2'],
    );
    const checks = (await (await fetch(`${consul.httpAddr}/v1/health/checks/st-api`)).json()) as { CheckID: string }[];
    assert.deepEqual(
      checks.map((c) => c.CheckID),
      ['service:st-api-2'],
    );
  });

  it('when an unknown service is queried, then health and catalog answer an empty list', async () => {
    assert.deepEqual(await client.health.service('nope'), []);
    assert.deepEqual(await client.catalog.service.nodes('nope'), []);
    assert.equal(await client.status.leader(), '127.0.0.1:8300');
  });

  it('when requests carry an ACL token, then the call log records it per request', async () => {
    consul.clearLogs();
    const tokenClient = new Consul({ host: '127.0.0.1', port: node1.port, defaults: { token: 'secret-token' } });
    await tokenClient.kv.get('anything');
    tokenClient.destroy();
    await fetch(`${consul.httpAddr}/v1/catalog/services`);
    const log = consul.callLog();
    assert.deepEqual(
      log.map((e) => [e.agent, e.method, e.path, e.token, e.status]),
      [
        ['api-node-1', 'GET', '/v1/kv/anything', 'secret-token', 404],
        ['consul-server-1', 'GET', '/v1/catalog/services', null, 200],
      ],
    );
  });
});

describe('consul double KV and sessions', () => {
  let consul: ConsulDouble;
  let client: Consul;

  before(async () => {
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    await consul.addNode('api-node-1', '10.0.1.11');
    client = clientFor(consul.node('api-node-1').agentAddr);
  });
  after(async () => {
    client.destroy();
    await consul.stop();
  });

  it('when keys are set with cas, then cas=0 creates only and cas=N must match ModifyIndex', async () => {
    assert.equal(await client.kv.get('st-api/dns/status'), undefined);
    assert.equal(await kvSet(client, { key: 'st-api/dns/status', value: 'one', cas: 0 }), true);
    assert.equal(await kvSet(client, { key: 'st-api/dns/status', value: 'two', cas: 0 }), false);
    const entry = (await client.kv.get('st-api/dns/status')) as {
      Value: string;
      ModifyIndex: number;
      CreateIndex: number;
      LockIndex: number;
      Flags: number;
    };
    assert.equal(entry.Value, 'one');
    assert.equal(await kvSet(client, { key: 'st-api/dns/status', value: 'three', cas: entry.ModifyIndex - 1 }), false);
    assert.equal(await kvSet(client, { key: 'st-api/dns/status', value: 'three', cas: entry.ModifyIndex, flags: 42 }), true);
    const raw = (await (await fetch(`${consul.httpAddr}/v1/kv/st-api/dns/status`)).json()) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(raw[0]!), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex']);
    assert.equal(raw[0]!['Value'], Buffer.from('three').toString('base64'));
    assert.equal(raw[0]!['Flags'], 42);
    assert.equal(await (await fetch(`${consul.httpAddr}/v1/kv/st-api/dns/status?raw`)).text(), 'three');
    assert.equal((await fetch(`${consul.httpAddr}/v1/kv/missing`)).status, 404);
  });

  it('when listing with recurse and keys, then entries and separator-collapsed keys come back', async () => {
    await kvSet(client, { key: 'st-api/dns/excluded/api-node-2', value: '{"reason":"work"}' });
    await kvSet(client, { key: 'st-api/dns/excluded/api-node-3', value: '{"reason":"new"}' });
    const entries = (await client.kv.get({ key: 'st-api/dns/excluded/', recurse: true })) as { Key: string }[];
    assert.deepEqual(
      entries.map((e) => e.Key),
      ['st-api/dns/excluded/api-node-2', 'st-api/dns/excluded/api-node-3'],
    );
    assert.deepEqual(await client.kv.keys({ key: 'st-api/', separator: '/' }), ['st-api/dns/']);
    assert.deepEqual(await client.kv.keys('st-api/dns/excluded/'), ['st-api/dns/excluded/api-node-2', 'st-api/dns/excluded/api-node-3']);
    assert.equal((await fetch(`${consul.httpAddr}/v1/kv/nothing/?recurse`)).status, 404);
  });

  it('when a key under a prefix is deleted, then a blocking recurse wakes and the index does not go backwards', async () => {
    const first = await fetch(`${consul.httpAddr}/v1/kv/st-api/dns/excluded/?recurse`);
    const index = Number(first.headers.get('x-consul-index'));
    const pending = fetch(`${consul.httpAddr}/v1/kv/st-api/dns/excluded/?recurse&index=${index}&wait=5s`);
    await sleep(100);
    assert.equal(await client.kv.del('st-api/dns/excluded/api-node-3'), true);
    const res = await pending;
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    assert.deepEqual(
      ((await res.json()) as { Key: string }[]).map((e) => e.Key),
      ['st-api/dns/excluded/api-node-2'],
    );
    assert.equal(await client.kv.del({ key: 'st-api/dns/excluded/', recurse: true }), true);
    assert.equal(await client.kv.get({ key: 'st-api/dns/excluded/', recurse: true }), undefined);
  });

  it('when two sessions race for a lock, then only one acquires, the holder can update, and release frees it', async () => {
    const a = await client.session.create({ name: 'a', ttl: '10s', lockdelay: '0s' });
    const b = await client.session.create({ name: 'b', ttl: '10s', lockdelay: '0s' });
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'a', acquire: a.ID }), true);
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'b', acquire: b.ID }), false);
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'a2', acquire: a.ID }), true);
    const held = (await client.kv.get('st-api/dns/lock')) as unknown as { Session: string; LockIndex: number; Value: string };
    assert.deepEqual([held.Session, held.LockIndex, held.Value], [a.ID, 1, 'a2']);
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'x', release: b.ID }), false);
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'free', release: a.ID }), true);
    assert.equal(await kvSet(client, { key: 'st-api/dns/lock', value: 'b', acquire: b.ID }), true);
    const info = (await client.session.info(b.ID)) as { Node: string; NodeChecks: string[]; Behavior: string; TTL: string };
    assert.deepEqual([info.Node, info.NodeChecks, info.Behavior, info.TTL], ['api-node-1', ['serfHealth'], 'release', '10s']);
    assert.equal(((await client.session.list()) as unknown[]).length, 2);
    await client.session.destroy(a.ID);
    await client.session.destroy(a.ID);
    assert.deepEqual(await (await fetch(`${consul.httpAddr}/v1/session/info/${a.ID}`)).json(), []);
    assert.equal(await client.session.info(a.ID), undefined);
    await client.session.destroy(b.ID);
    assert.equal(((await client.kv.get('st-api/dns/lock')) as { Session?: string }).Session, undefined);
  });

  it('when the node check goes critical, then its session is invalidated and lock-delay refuses a new acquire', async () => {
    const a = await client.session.create({ name: 'a', lockdelay: '400ms' });
    assert.equal(await kvSet(client, { key: 'lock2', value: 'a', acquire: a.ID }), true);
    consul.setNodeCheck('api-node-1', 'critical');
    assert.deepEqual(await (await fetch(`${consul.httpAddr}/v1/session/info/${a.ID}`)).json(), []);
    consul.setNodeCheck('api-node-1', 'passing');
    const b = await client.session.create({ name: 'b', lockdelay: '0s' });
    assert.equal(await kvSet(client, { key: 'lock2', value: 'b', acquire: b.ID }), false, 'lock-delay');
    await sleep(500);
    assert.equal(await kvSet(client, { key: 'lock2', value: 'b', acquire: b.ID }), true);
    await assert.rejects(client.session.create({ node: 'no-such-node' }));
  });

  it('when a delete-behaviour session expires by TTL, then its held key is deleted within 2×TTL', async () => {
    const quick = await startConsulDouble({ sessionTtlMultiplier: 0.02 });
    try {
      const res = await put(`${quick.httpAddr}/v1/session/create`, { TTL: '10s', Behavior: 'delete', LockDelay: '0s' });
      const { ID } = (await res.json()) as { ID: string };
      assert.equal(await (await put(`${quick.httpAddr}/v1/kv/held?acquire=${ID}`, 'v')).json(), true);
      assert.equal((await put(`${quick.httpAddr}/v1/session/renew/${ID}`)).status, 200);
      await sleep(350);
      assert.equal((await fetch(`${quick.httpAddr}/v1/kv/held`)).status, 404);
      assert.equal((await put(`${quick.httpAddr}/v1/session/renew/${ID}`)).status, 404);
      assert.equal((await put(`${quick.httpAddr}/v1/session/create`, { TTL: '5s' })).status, 400);
    } finally {
      await quick.stop();
    }
  });
});
