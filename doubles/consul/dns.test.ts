// Consul DNS through node's own resolver pointed at the double.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import { startConsulDouble, type ConsulDouble } from './double.ts';

async function register(addr: string, body: unknown): Promise<void> {
  const res = await fetch(`${addr}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

function resolverFor(port: number): Resolver {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return resolver;
}

describe('consul double DNS', () => {
  let consul: ConsulDouble;
  let resolver: Resolver;

  before(async () => {
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    resolver = resolverFor(consul.dnsPort);
    const a = await consul.addNode('redis-a', '10.0.2.21');
    const b = await consul.addNode('redis-b', '10.0.2.22');
    const c = await consul.addNode('redis-c', '10.0.2.23');
    // One redis service per node with a TTL role check, in the state each case below relies on.
    const redis = (tag: string, status: string, extra: Record<string, unknown> = {}) => ({
      ID: 'redis',
      Name: 'redis',
      Tags: [tag],
      Port: 6379,
      ...extra,
      Check: { CheckID: 'role', TTL: '60s', Status: status },
    });
    await register(a.agentAddr, redis('master', 'passing'));
    await register(b.agentAddr, redis('replica', 'warning', { Address: '10.0.2.122' }));
    await register(c.agentAddr, redis('replica', 'critical', { Port: 6380 }));
  });
  after(async () => {
    await consul.stop();
  });

  it('when a service is resolved, then critical instances are dropped, warning ones kept, with TTL 0', async () => {
    const answers = await resolver.resolve4('redis.service.consul', { ttl: true });
    assert.deepEqual(answers.map((a) => a.address).sort(), ['10.0.2.122', '10.0.2.21']);
    assert.ok(answers.every((a) => a.ttl === 0));
  });

  it('when a tag is asked in either form, then only tagged healthy instances answer', async () => {
    assert.deepEqual(await resolver.resolve4('master.redis.service.consul'), ['10.0.2.21']);
    assert.deepEqual(await resolver.resolve4('replica.redis.service.dc1.consul'), ['10.0.2.122']);
    const srv = await resolver.resolveSrv('_redis._master.service.consul');
    assert.deepEqual(
      srv.map((s) => [s.name, s.port]),
      [['redis-a.node.dc1.consul', 6379]],
    );
    const all = await resolver.resolveSrv('redis.service.consul');
    assert.deepEqual(all.map((s) => s.port).sort(), [6379, 6379]);
    assert.ok(
      all.some((s) => s.name === '0a00027a.addr.dc1.consul'),
      'a service address other than the node address is an addr target',
    );
  });

  it('when the master fails its node check or enters maintenance, then it leaves DNS', async () => {
    consul.setNodeCheck('redis-a', 'critical');
    await assert.rejects(resolver.resolve4('master.redis.service.consul'), { code: 'ENOTFOUND' });
    consul.setNodeCheck('redis-a', 'passing');
    assert.deepEqual(await resolver.resolve4('master.redis.service.consul'), ['10.0.2.21']);
    const maintenance = await fetch(`${consul.node('redis-a').agentAddr}/v1/agent/service/maintenance/redis?enable=true&reason=failover`, {
      method: 'PUT',
    });
    assert.equal(maintenance.status, 200);
    await assert.rejects(resolver.resolve4('master.redis.service.consul'), { code: 'ENOTFOUND' });
    await fetch(`${consul.node('redis-a').agentAddr}/v1/agent/service/maintenance/redis?enable=false`, { method: 'PUT' });
  });

  it('when a name is unknown, then the answer is NXDOMAIN; a node name resolves to its address', async () => {
    await assert.rejects(resolver.resolve4('nope.service.consul'), { code: 'ENOTFOUND' });
    assert.deepEqual(await resolver.resolve4('redis-b.node.consul'), ['10.0.2.22']);
  });

  it('when many instances answer, then order is randomised and at most udp_answer_limit are returned', async () => {
    const web = [];
    for (let i = 1; i <= 6; i++) {
      const node = await consul.addNode(`web-${i}`, `10.0.3.${i}`);
      await register(node.agentAddr, { ID: 'web', Name: 'web', Port: 80, Check: { TTL: '60s', Status: 'passing' } });
      web.push(node);
    }
    const orders = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const answers = await resolver.resolve4('web.service.consul');
      assert.equal(answers.length, 3);
      orders.add(answers.join(','));
    }
    assert.ok(orders.size > 1, 'answers vary');
  });

  it('when onlyPassing is configured, then warning instances are dropped too', async () => {
    const strict = await startConsulDouble({ dns: { onlyPassing: true } });
    try {
      const node = await strict.addNode('r1', '10.1.0.1');
      await register(node.agentAddr, { ID: 'redis', Name: 'redis', Port: 6379, Check: { TTL: '60s', Status: 'warning' } });
      await assert.rejects(resolverFor(strict.dnsPort).resolve4('redis.service.consul'), { code: 'ENOTFOUND' });
    } finally {
      await strict.stop();
    }
  });
});
