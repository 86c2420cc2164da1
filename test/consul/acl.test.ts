// The ACL walk: each program runs against the Consul double with a token of its own, the double
// logs every HTTP call, each call is mapped to the permission Consul documents for it
// (consul-config.ts, with the doc of each row), and the policy in consul/acl/ must
// (a) allow every call the program made and (b) hold no rule that no call needed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CallLogEntry } from '../../doubles/consul/double.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { waitFor } from '../../testkit/processes.ts';
import { startHooksSystem, type HooksSystem } from '../sentinel-hooks/system.ts';
import { registerApiNode, startWatcherWorld, waitForPublished, WATCHER, watcherCli, type WatcherWorld } from '../watcher/harness.ts';
import {
  CONSUL_DIR,
  dnsRequirements,
  evaluate,
  governingRule,
  grants,
  loadPolicy,
  parsePolicy,
  readJson,
  registrationRequirements,
  REPO,
  requirementsOf,
  UnmappedCallError,
  worldFromDouble,
  type Access,
  type Requirement,
  type Resource,
  type Rule,
  type World,
} from './consul-config.ts';

function needsOf(calls: readonly CallLogEntry[], world: World): { call: string; requirement: Requirement }[] {
  return calls.flatMap((call) =>
    requirementsOf(call, world).map((requirement) => ({ call: `${call.method} ${call.path} (${call.agent})`, requirement })),
  );
}

/** A call that needs `access` on one resource: for asking a policy about what no call here does. */
const asked = (call: string, resource: Resource, name: string, access: Access): { call: string; requirement: Requirement } => ({
  call,
  requirement: { resource, name, access, source: '' },
});

/** Method and decoded path (the consul client encodes `/` in keys), session ids elided. */
const distinct = (calls: readonly CallLogEntry[]): string[] =>
  [...new Set(calls.map((c) => `${c.method} ${decodeURIComponent(c.path).replace(/[0-9a-f]{8}-[0-9a-f-]{27}/, '<session>')}`))].sort();

describe('the policy evaluator', () => {
  const rules = parsePolicy(`
    # comment
    key_prefix "" { policy = "read" }
    key_prefix "st-api/" { policy = "deny" }
    key_prefix "st-api/dns/" {
      policy = "write"
    }
    key "st-api/dns/secret" { policy = "deny" }
  `);

  it('when rules overlap, then an exact rule wins, else the longest prefix', () => {
    assert.equal(governingRule(rules, 'key', 'st-api/dns/secret')?.policy, 'deny');
    assert.equal(governingRule(rules, 'key', 'st-api/dns/status')?.policy, 'write');
    assert.equal(governingRule(rules, 'key', 'st-api/other')?.policy, 'deny');
    assert.equal(governingRule(rules, 'key', 'elsewhere')?.policy, 'read');
    assert.equal(governingRule(rules, 'service', 'st-api'), undefined, 'no rule: the default policy (deny)');
  });

  it('when access is compared, then write implies read, read does not imply write, deny allows nothing', () => {
    assert.ok(grants('write', 'read') && grants('write', 'write') && grants('read', 'read'));
    assert.ok(!grants('read', 'write') && !grants('deny', 'read'));
  });

  it('when a policy uses anything but the one supported rule form, then it is refused rather than half-read', () => {
    assert.throws(() => parsePolicy('service "x" { policy = "read" intentions = "read" }'), /not in the supported rule form/);
    assert.throws(() => parsePolicy('operator = "read"'), /not in the supported rule form/);
    assert.throws(() => parsePolicy('key "a" { policy = "read" }\nkey "a" { policy = "write" }'), /appears twice/);
  });

  it('when an endpoint is not in the table, then the walk fails instead of assuming it is free', () => {
    const world: World = { nodesOf: () => [], serviceOfId: () => undefined, serviceOfCheck: () => undefined, servicesOn: () => [] };
    assert.throws(
      () => requirementsOf({ agent: 'n', method: 'PUT', path: '/v1/agent/service/deregister/x', query: {} }, world),
      UnmappedCallError,
    );
  });

  it('when a requirement has no rule, or a rule serves nothing, then the verdict names both', () => {
    const verdict = evaluate(parsePolicy('service "a" { policy = "read" }\nkey "b" { policy = "read" }'), [
      { call: 'GET /v1/health/service/a', requirement: { resource: 'service', name: 'a', access: 'read', source: 'doc' } },
      { call: 'GET /v1/health/service/a', requirement: { resource: 'node', name: 'n1', access: 'read', source: 'doc' } },
    ]);
    assert.equal(verdict.denied.length, 1);
    assert.match(verdict.denied[0] ?? '', /node:read on "n1".*no rule matches/);
    assert.deepEqual(verdict.unused, ['key "b"']);
  });
});

describe('ACL walk: watcher', { timeout: 120_000 }, () => {
  const TOKEN = 'watcher-token-0f3c';
  let world: WatcherWorld;
  const nodes: TestNode[] = [];
  let watcherCalls: CallLogEntry[] = [];
  let watchCalls: CallLogEntry[] = [];
  let consulWorld: World;

  before(async () => {
    world = await startWatcherWorld({ minHealthy: 1 });
    for (const [name, address] of [
      ['api-node-1', '127.0.1.1'],
      ['api-node-2', '127.0.1.2'],
    ] as const) {
      const node = await startTestNode();
      nodes.push(node);
      await registerApiNode(world, name, address, node);
    }
    await waitFor(
      async () =>
        ((await (await fetch(`${world.consul.httpAddr}/v1/health/service/st-api?passing`)).json()) as unknown[]).length === 2 || undefined,
      { timeoutMs: 15_000, intervalMs: 100, what: 'both st-api checks passing' },
    );
    world.consul.clearLogs();

    // Every command, as the watch, the timer and an operator run it, each with the watcher's token.
    const env = { CONSUL_HTTP_TOKEN: TOKEN };
    world.consul.watch({
      node: 'api-node-1',
      type: 'service',
      service: 'st-api',
      args: [...WATCHER, 'handle'],
      env: { ...world.env, ...env },
      cwd: REPO,
    });
    await waitForPublished(world, ['api-node-1', 'api-node-2'], 'the watch handler');
    for (const argv of [
      ['reconcile'],
      ['plan'],
      ['status'],
      ['exclude', 'api-node-2', '--reason', 'acl walk', '--by', 'ci'],
      ['include', 'api-node-2'],
    ]) {
      const result = await watcherCli(world, argv, { env });
      assert.equal(result.code, 0, `${argv.join(' ')}: ${result.stderr}`);
    }
    delete process.env['CONSUL_HTTP_TOKEN'];
    await waitFor(() => world.consul.invocations().some((i) => i.exitCode === 0) || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'a handler run to finish',
    });

    const calls = world.consul.callLog();
    watcherCalls = calls.filter((c) => c.token === TOKEN);
    // Calls without a token are the agent's own: the watch plan's blocking query.
    watchCalls = calls.filter((c) => c.token === null);
    assert.deepEqual(
      calls.filter((c) => c.token !== TOKEN && c.token !== null),
      [],
    );
    const agents = new Map([
      [world.consul.serverNode, world.consul.httpAddr],
      ...['api-node-1', 'api-node-2'].map((n) => [n, world.consul.node(n).agentAddr] as [string, string]),
    ]);
    consulWorld = await worldFromDouble(agents, world.consul.httpAddr);
  });

  after(async () => {
    delete process.env['CONSUL_HTTP_TOKEN'];
    await world?.stop();
    await Promise.all(nodes.map((node) => node.close()));
  });

  it('when every command ran, then the watcher used health, KV under st-api/dns/ and a session — nothing else', () => {
    // A blocking read of the lock key shows up only when two runs met at the lock.
    assert.deepEqual(
      distinct(watcherCalls).filter((c) => c !== 'GET /v1/kv/st-api/dns/lock'),
      [
        'DELETE /v1/kv/st-api/dns/excluded/api-node-2',
        'GET /v1/health/service/st-api',
        'GET /v1/kv/st-api/dns/excluded/',
        'GET /v1/kv/st-api/dns/excluded/api-node-2',
        'GET /v1/kv/st-api/dns/status',
        'PUT /v1/kv/st-api/dns/excluded/api-node-2',
        'PUT /v1/kv/st-api/dns/lock',
        'PUT /v1/kv/st-api/dns/status',
        'PUT /v1/session/create',
        'PUT /v1/session/destroy/<session>',
      ],
    );
  });

  it('when its calls are checked against consul/acl/watcher.hcl, then all are allowed and every rule is needed', () => {
    const verdict = evaluate(loadPolicy('watcher.hcl'), needsOf(watcherCalls, consulWorld));
    assert.deepEqual(verdict.denied, []);
    assert.deepEqual(verdict.unused, []);
  });

  it('when the watch query is checked against consul/acl/st-api-watch.hcl, then it is allowed and every rule is needed', () => {
    assert.deepEqual(distinct(watchCalls), ['GET /v1/health/service/st-api']);
    assert.ok(
      watchCalls.every((c) => c.agent === 'api-node-1'),
      'the agent that runs the watch',
    );
    const verdict = evaluate(loadPolicy('st-api-watch.hcl'), needsOf(watchCalls, consulWorld));
    assert.deepEqual(verdict.denied, []);
    assert.deepEqual(verdict.unused, []);
  });

  it('when the watcher policy is asked for more, then it refuses: no writes to services, other keys or the redis events', () => {
    const rules = loadPolicy('watcher.hcl');
    const verdict = evaluate(rules, [
      asked('register st-api', 'service', 'st-api', 'write'),
      asked('read redis', 'service', 'redis', 'read'),
      asked('kv', 'key', 'redis/sentinel/events/mymaster', 'write'),
      asked('kv', 'key', 'st-api/dnsx', 'read'),
      asked('node', 'node', 'api-node-1', 'write'),
    ]);
    assert.equal(verdict.denied.length, 5);
  });

  it('when the policy lacked node read, then the walk would catch it (the health answer is filtered by node)', () => {
    const rules = loadPolicy('watcher.hcl').filter((r: Rule) => r.resource !== 'node');
    const verdict = evaluate(rules, needsOf(watcherCalls, consulWorld));
    assert.ok(
      verdict.denied.some((d) => /GET \/v1\/health\/service\/st-api .* needs node:read on "api-node-1"/.test(d)),
      verdict.denied.join('\n'),
    );
  });
});

describe('ACL walk: sentinel-hooks, and the DNS token st-api relies on', { timeout: 150_000 }, () => {
  const TOKEN = 'hooks-token-7a21';
  let system: HooksSystem;
  let hooksCalls: CallLogEntry[] = [];
  let consulWorld: World;

  before(async () => {
    system = await startHooksSystem({ reconcilePeriodMs: 2000 });
    await system.cluster.waitStable(30_000);
    system.consul.clearLogs();
    const env = { CONSUL_HTTP_TOKEN: TOKEN };
    assert.deepEqual(await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile'], env))), [0, 0, 0]);
    const [master, replica] = system.cluster.redis;
    assert.ok(master !== undefined && replica !== undefined);
    assert.equal(
      await system.cli(
        1,
        ['client-reconfig', 'mymaster', 'leader', 'start', replica.ip, String(replica.port), master.ip, String(master.port)],
        env,
      ),
      0,
    );
    assert.equal(
      await system.cli(
        2,
        [
          'notification',
          '+sdown',
          `slave ${replica.ip}:${replica.port} ${replica.ip} ${replica.port} @ mymaster ${master.ip} ${master.port}`,
        ],
        env,
      ),
      0,
    );

    const calls = system.consul.callLog();
    const redisAgents = new Set(system.nodes.map((n) => n.name));
    // Hooks that the Sentinels themselves ran in this window carry no token in the test bed; they
    // are the same program, so their calls count too. Nothing else talks to the Redis hosts' agents.
    hooksCalls = calls.filter((c) => c.token === TOKEN || (c.token === null && redisAgents.has(c.agent)));
    assert.deepEqual(
      calls.filter((c) => !hooksCalls.includes(c)).map((c) => `${c.method} ${c.path} ${c.agent}`),
      [],
    );
    assert.ok(
      hooksCalls.every((c) => redisAgents.has(c.agent)),
      "the hooks talk to their own host's agent only",
    );
    const agents = new Map(system.nodes.map((n) => [n.name, n.agentAddr] as [string, string]));
    consulWorld = await worldFromDouble(agents, system.consul.httpAddr);
  });

  after(async () => {
    await system?.stop();
  });

  it('when reconcile, client-reconfig and notification ran, then the hooks used the redis service, its checks, health and one KV key', () => {
    assert.deepEqual(
      distinct(hooksCalls.filter((c) => c.token === TOKEN)),
      [
        'GET /v1/agent/checks',
        ...system.cluster.redis.map((r) => `GET /v1/agent/service/redis-${r.ip}-${r.port}`),
        'GET /v1/health/service/redis',
        'GET /v1/kv/redis/sentinel/events/mymaster',
        ...system.cluster.redis.map((r) => `PUT /v1/agent/check/update/redis-${r.ip}-${r.port}:role`),
        'PUT /v1/agent/service/register',
        'PUT /v1/kv/redis/sentinel/events/mymaster',
      ].sort(),
    );
  });

  it('when its calls are checked against consul/acl/sentinel-hooks.hcl, then all are allowed and every rule is needed', () => {
    const verdict = evaluate(loadPolicy('sentinel-hooks.hcl'), needsOf(hooksCalls, consulWorld));
    assert.deepEqual(verdict.denied, []);
    assert.deepEqual(verdict.unused, []);
  });

  it('when the hooks policy is asked for more, then it refuses: no st-api service, no watcher keys, no node writes, no sessions', () => {
    const verdict = evaluate(loadPolicy('sentinel-hooks.hcl'), [
      asked('x', 'service', 'st-api', 'write'),
      asked('x', 'key', 'st-api/dns/status', 'write'),
      asked('x', 'key', 'redis/sentinel/other', 'read'),
      asked('x', 'node', 'redis-host-0', 'write'),
      asked('x', 'session', 'redis-host-0', 'write'),
    ]);
    assert.equal(verdict.denied.length, 5);
  });

  it('when st-api looks up master.redis.service.consul, then consul/acl/api-dns.hcl allows exactly what the agent needs to answer', async () => {
    // A and SRV lookups of the redis service: service:read, and node:read on every node that runs
    // Redis (answers are filtered by node; SRV targets are node names).
    const answered = await system.dnsMasters();
    assert.equal(answered.length, 1, 'one master in DNS');
    const verdict = evaluate(
      loadPolicy('api-dns.hcl'),
      dnsRequirements('redis', consulWorld.nodesOf('redis')).map((requirement) => ({
        call: 'DNS master.redis.service.consul',
        requirement,
      })),
    );
    assert.deepEqual(verdict.denied, []);
    assert.deepEqual(verdict.unused, []);
    assert.equal(evaluate(loadPolicy('api-dns.hcl'), [asked('x', 'key', 'redis/sentinel/events/mymaster', 'read')]).denied.length, 1);
  });

  it('when the agent registers the st-api service file, then consul/acl/st-api-registration.hcl allows it and nothing more', () => {
    const service = (readJson(join(CONSUL_DIR, 'agent', 'st-api-service.json')) as { service: { name: string } }).service;
    const rules = loadPolicy('st-api-registration.hcl');
    const verdict = evaluate(
      rules,
      registrationRequirements(service.name).map((requirement) => ({ call: 'config-file registration', requirement })),
    );
    assert.deepEqual(verdict.denied, []);
    assert.deepEqual(verdict.unused, []);
    assert.equal(
      evaluate(
        rules,
        registrationRequirements('redis').map((requirement) => ({ call: 'x', requirement })),
      ).denied.length,
      1,
    );
  });
});
