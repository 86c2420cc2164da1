// The failover suite's first scenarios with every Consul agent serving HTTPS (issue #12): real
// redis-server and redis-sentinel, the hooks Sentinel runs and each host's reconcile timer reach
// their agent as production would over TLS, through consulAddress and consulCaFile in their
// configuration file (no CONSUL_* variable). Every call they make arrives on an HTTPS port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../testkit/processes.ts';
import { startHooksSystem, type HooksSystem } from './system.ts';

let system: HooksSystem;

describe('sentinel hooks with real Sentinels, Consul over TLS', { timeout: 300_000 }, () => {
  before(async () => {
    system = await startHooksSystem({ reconcilePeriodMs: 2000, consulTls: true });
    await system.cluster.waitStable(30_000);
  });
  after(async () => {
    await system?.stop();
  });

  it('when reconcile runs on each host over TLS, then DNS answers the master only', async () => {
    assert.ok(system.nodes.every((node) => node.httpsAddr !== undefined));
    assert.deepEqual(await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile']))), [0, 0, 0]);
    await waitFor(
      async () =>
        (await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile'])))).every((c) => c === 0) &&
        (await system.registrations()).every((r) => r.health === 'passing'),
      { timeoutMs: 15_000, intervalMs: 300, what: 'replicas in sync' },
    );
    assert.deepEqual(await system.dnsMasters(), ['127.0.0.2']);
    system.startReconcileTimer();
  });

  it('when the master is killed with -9, then DNS answers the new master, and every call to a host’s agent came over TLS', async () => {
    const old = system.cluster.redis.find((r) => r.key === `127.0.0.2:${r.port}`);
    assert.ok(old);
    await old.kill();
    const newMaster = await waitFor(
      async () => {
        const addrs = await system.cluster.masterAddrs();
        return addrs.every((a) => a !== null && a !== old.key && a === addrs[0]) ? addrs[0] : null;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'the Sentinels to agree on a new master' },
    );
    await waitFor(
      async () => {
        const dns = await system.dnsMasters();
        return dns.length === 1 && dns[0] === newMaster.split(':')[0];
      },
      { timeoutMs: 45_000, intervalMs: 100, what: `DNS answering ${newMaster}` },
    );
    await system.stopReconcileTimer();
    // The test itself reads the server node's agent over HTTP; the hooks talk only to their hosts' agents.
    const hostCalls = system.consul.callLog().filter((call) => call.agent.startsWith('redis-host-'));
    assert.ok(
      hostCalls.some((call) => call.method === 'PUT' && call.path === '/v1/agent/service/register'),
      'the hooks registered through their agents',
    );
    assert.deepEqual(
      hostCalls.filter((call) => !call.tls).map((call) => `${call.agent} ${call.method} ${call.path}`),
      [],
      'no call over plain HTTP',
    );
  });
});
