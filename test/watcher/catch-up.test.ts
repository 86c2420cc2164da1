// The catch-up pass before the lock is released is best effort: once a run has applied its changes,
// Consul failing to answer the extra health read must not turn the run into a failure whose status
// says DNS was left unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadWatcherConfig } from '../../watcher/config.ts';
import { converge } from '../../watcher/converge.ts';
import { Route53Provider } from '../../watcher/provider/route53.ts';
import type { HealthSource, Snapshot } from '../../watcher/source/source.ts';
import { ConsulState } from '../../watcher/state/consul-state.ts';
import { kvGet, publishedNodes, startWatcherWorld, type WatcherWorld } from './harness.ts';

/** Consul's health endpoint stops answering (as when the agent restarts mid-run); its KV and sessions, the real registry, still answer. */
const healthGone: HealthSource = { read: () => Promise.reject(new Error('connect ECONNREFUSED (Consul agent restarting)')) };

let world: WatcherWorld;
before(async () => {
  world = await startWatcherWorld();
});
after(async () => {
  await world.stop();
});

describe('when Consul stops answering after a run applied its changes', () => {
  it('then the run still succeeds, DNS holds the change, and the status says applied', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, world.env);
    try {
      const config = loadWatcherConfig(world.configFile, world.env);
      const snapshot: Snapshot = {
        index: 42,
        source: 'consul',
        instances: ['api-node-1', 'api-node-2'].map((node, i) => ({
          node,
          serviceId: 'st-api',
          ipv4: `10.0.0.${i + 1}`,
          ipv6: undefined,
          health: 'passing' as const,
        })),
      };
      const result = await converge(
        {
          config,
          source: healthGone,
          registry: new ConsulState({ address: world.consul.httpAddr, token: undefined, kvPrefix: config.kvPrefix, timeoutMs: 2000 }),
          provider: new Route53Provider({ zoneId: config.zoneId, recordName: config.recordName, ownerId: config.ownerId, maxAttempts: 1 }),
          logger: pino({ level: 'silent' }),
          now: () => new Date(),
          holder: 'catch-up-test',
        },
        'handle',
        snapshot,
      );
      assert.equal(result.result, 'applied');
      assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
      const status = JSON.parse((await kvGet(world, 'st-api/dns/status')) ?? '{}') as { result: string; appliedIndex: number };
      assert.equal(status.result, 'applied');
      assert.equal(status.appliedIndex, 42);
    } finally {
      process.env = saved;
    }
  });
});
