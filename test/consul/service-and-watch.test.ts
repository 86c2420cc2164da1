// One end-to-end run of the files in consul/agent/ as an agent would load them: the st-api
// service definition, translated into the register call the agent makes, checks two real st-api
// nodes with the chosen timing; the watch definition, with its installed paths mapped back to the
// sources, drives the real watcher through the double's watch runner; Route53 gets the records.
// The nodes serve HTTPS with a certificate for the check's tls_server_name from a test CA, and the
// agents trust that CA for checks (enable_agent_tls_for_checks), as consul/README.md says to set up.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { createTestCa } from '../../testkit/tls.ts';
import { publishedNodes, REPO as WATCHER_REPO, startWatcherWorld, waitForPublished, type WatcherWorld } from '../watcher/harness.ts';
import { CONSUL_DIR, isObject, readJson, REPO, serviceRegistrationBody, sourceOfInstalled, str, type JsonObject } from './consul-config.ts';

const serviceFile = readJson(join(CONSUL_DIR, 'agent', 'st-api-service.json')) as { service: JsonObject };
const watchFile = readJson(join(CONSUL_DIR, 'agent', 'st-api-watch.json')) as {
  watches: { type: string; service: string; args: string[] }[];
};

let world: WatcherWorld;
let registeredAt = 0;
const nodes = new Map<string, TestNode>();

/** The file's body with the one thing a test cannot keep: st-api's port (each test node has its own). */
function bodyFor(node: TestNode): JsonObject {
  const body = serviceRegistrationBody(serviceFile.service);
  const port = Number(new URL(node.baseUrl).port);
  const check = body['Check'];
  assert.ok(isObject(check));
  const url = new URL(str(check['HTTP'], 'Check.HTTP'));
  url.port = String(port);
  return { ...body, Port: port, Check: { ...check, HTTP: url.toString() } };
}

/** The file's handler, run from the sources: /usr/bin/node → this node, dist/…js → its .ts through tsx. */
function devArgs(args: readonly string[]): string[] {
  const [, script, ...rest] = args;
  return [process.execPath, '--import', 'tsx', join(REPO, sourceOfInstalled(script ?? '')), ...rest];
}

before(async () => {
  assert.equal(WATCHER_REPO, REPO);
  const ca = createTestCa(await makeTempDir('st-consul-files'));
  const check = serviceFile.service['check'];
  assert.ok(isObject(check));
  const serverName = str(check['tls_server_name'], 'check.tls_server_name');
  world = await startWatcherWorld({ minHealthy: 2 }, {}, { tlsForChecks: { caPem: ca.caPem } });
  registeredAt = Date.now();
  for (const [name, address] of [
    ['api-node-1', '127.0.1.1'],
    ['api-node-2', '127.0.1.2'],
  ] as const) {
    const node = await startTestNode({ tls: ca.server(name, [serverName]) });
    nodes.set(name, node);
    const handle = await world.consul.addNode(name, address);
    const response = await fetch(`${handle.agentAddr}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(bodyFor(node)) });
    assert.equal(response.status, 200, await response.text());
  }
});

after(async () => {
  await world?.stop();
  await Promise.all([...nodes.values()].map((node) => node.close()));
});

describe('consul/agent files loaded into an agent', { timeout: 90_000 }, () => {
  it('when the service definition is registered, then the agent holds st-api with an HTTP check on /health/deep every 5 s, timeout 2 s, starting critical', async () => {
    const agent = world.consul.node('api-node-1').agentAddr;
    const service = (await (await fetch(`${agent}/v1/agent/service/st-api`)).json()) as { Service: string; ID: string; Address: string };
    assert.equal(service.Service, 'st-api');
    assert.equal(service.ID, 'st-api');
    assert.equal(service.Address, '', 'DNS and the watcher use the node address');
    const checks = (await (await fetch(`${agent}/v1/agent/checks`)).json()) as Record<
      string,
      {
        Status: string;
        Type: string;
        ServiceID: string;
        Definition: { HTTP: string; TLSServerName?: string; TLSSkipVerify?: boolean; Interval: string; Timeout: string };
      }
    >;
    const check = checks['st-api:deep-health'];
    assert.ok(check !== undefined, 'check st-api:deep-health registered');
    assert.equal(check.ServiceID, 'st-api');
    assert.equal(check.Type, 'http');
    assert.match(check.Definition.HTTP, /^https:\/\/127\.0\.0\.1:\d+\/health\/deep$/);
    assert.equal(check.Definition.TLSServerName, 'play.example.com');
    assert.equal(check.Definition.TLSSkipVerify, undefined, 'false, the default, is left out as Consul does');
    assert.equal(check.Definition.Interval, '5s');
    assert.equal(check.Definition.Timeout, '2s');
    // Consul's default initial status: a new node is out until its checks pass (twice, here).
    assert.equal(check.Status, 'critical');
  });

  it('when the watch definition runs the real watcher, then both nodes reach DNS once their checks have passed twice', async () => {
    const [watch] = watchFile.watches;
    assert.ok(watch !== undefined);
    world.consul.watch({
      node: 'api-node-1',
      type: 'service',
      service: watch.service,
      args: devArgs(watch.args),
      env: world.env,
      cwd: REPO,
    });
    await waitForPublished(world, ['api-node-1', 'api-node-2'], 'the watch from consul/agent/st-api-watch.json', 45_000);
    // success_before_passing 2 at a 5 s interval: not before the second probe (~10 s).
    const elapsed = Date.now() - registeredAt;
    assert.ok(elapsed >= 9000, `published ${elapsed} ms after registration`);
    assert.equal(publishedNodes(world).get('api-node-1'), '127.0.1.1');
    await waitFor(() => world.consul.invocations().some((i) => i.exitCode === 0) || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'a handler run to finish',
    });
    const failed = world.consul.invocations().filter((i) => i.exitCode !== null && i.exitCode !== 0);
    assert.deepEqual(
      failed.map((i) => i.output),
      [],
      'no handler run failed',
    );
  });
});
