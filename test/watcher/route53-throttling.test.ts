// 1,000 st-api nodes flapping, against the Route53 double with AWS's documented throttling buckets
// (account 50 / 10 per second, per operation 50 / 10; doubles/route53/throttle.ts). Every round a
// different half of the nodes turns critical and the real `watcher handle` runs twice at once, as the
// watches of two Consul agents do. What must hold: every handler exits 0, after every round DNS holds
// exactly the healthy nodes, and the watcher's calls stay inside the buckets (none throttled). More
// rounds, and the old 5 requests/s limit, are measured by bench/watcher.bench.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DOCUMENTED_LIMITS } from '../../doubles/route53/server.ts';
import { publishedNodes, REPO, startWatcherWorld, watcherCli, type WatcherWorld } from './harness.ts';

const NODES = 1000;
const ROUNDS = 6;

interface HealthEntry {
  Node: { Node: string; Address: string; TaggedAddresses: Record<string, string> };
  Service: { ID: string; Address: string; TaggedAddresses: Record<string, { Address: string; Port: number }> };
  Checks: { Node: string; Status: string; ServiceID: string }[];
}

const template = (
  JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'consul', 'health-service-st-api.json'), 'utf8')) as HealthEntry[]
)[0];

const nodeName = (i: number): string => `api-node-${String(i).padStart(4, '0')}`;
const addressOf = (i: number): string => `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`;

/** Round 0: all healthy. Round r ≥ 1: the nodes whose bit (r - 1) is set are critical, a different half each round. */
const isCritical = (i: number, round: number): boolean => round > 0 && ((i >> (round - 1)) & 1) === 1;

/** GET /v1/health/service/st-api as the agent hands it to a watch handler. */
function healthJson(round: number): string {
  if (template === undefined) throw new Error('fixture has no entry');
  const entries = Array.from({ length: NODES }, (_, i) => {
    const entry = structuredClone(template);
    const address = addressOf(i);
    entry.Node.Node = nodeName(i);
    entry.Node.Address = address;
    entry.Node.TaggedAddresses = { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
    entry.Service.Address = address;
    entry.Service.TaggedAddresses = { lan: { Address: address, Port: 8080 } };
    for (const check of entry.Checks) {
      check.Node = nodeName(i);
      if (check.ServiceID !== '') check.Status = isCritical(i, round) ? 'critical' : 'passing';
    }
    return entry;
  });
  return JSON.stringify(entries);
}

describe('watcher under Route53 throttling, 1,000 nodes flapping', () => {
  let world: WatcherWorld;

  before(async () => {
    // The double's default is the documented buckets; named here so the test does not depend on it.
    world = await startWatcherWorld(
      { minHealthy: 2, maxDeletesPerRun: NODES, lockWaitMs: 60_000 },
      { rateLimit: DOCUMENTED_LIMITS, insyncDelayMs: 100 },
    );
  });
  after(async () => {
    await world.stop();
  });

  it(`when half of ${NODES} nodes flip health every round for ${ROUNDS} rounds, with two handlers per round, then every handler converges and DNS matches health each time`, async () => {
    const started = Date.now();
    for (let round = 0; round <= ROUNDS; round += 1) {
      const stdin = healthJson(round);
      const env = { CONSUL_INDEX: String(1000 + round) };
      const results = await Promise.all([watcherCli(world, ['handle'], { stdin, env }), watcherCli(world, ['handle'], { stdin, env })]);
      for (const result of results) assert.equal(result.code, 0, `round ${round}: ${result.stderr.slice(-1000)}`);

      const healthy = Array.from({ length: NODES }, (_, i) => i).filter((i) => !isCritical(i, round));
      const published = publishedNodes(world);
      assert.equal(published.size, healthy.length, `round ${round}: published count`);
      for (const i of healthy) assert.equal(published.get(nodeName(i)), addressOf(i), `round ${round}: ${nodeName(i)}`);
    }
    const seconds = (Date.now() - started) / 1000;

    const calls = world.route53.calls();
    const throttled = calls.filter((call) => call.errorCode === 'Throttling');
    const changes = calls.filter((call) => call.operation === 'ChangeResourceRecordSets' && call.status === 200);
    // Each round but the first flips about half the nodes out and the other half's critical ones back:
    // 1,000 record changes at most, one request each (≤1,000 records per batch), so a round needs one or two.
    assert.ok(changes.length >= ROUNDS + 1 && changes.length <= 2 * (ROUNDS + 1), `${changes.length} accepted change batches`);
    // Inside the buckets: the calls fit the account bucket's envelope for the time taken (burst 50 plus
    // 10 per second), so none was throttled. A slower machine only widens the envelope.
    assert.ok(calls.length <= 50 + 10 * seconds, `${calls.length} calls in ${seconds} s`);
    assert.deepEqual(
      calls.filter((call) => call.status !== 200).map((call) => [call.operation, call.errorCode, call.throttledBy]),
      [],
      'no Route53 call failed, throttled or otherwise',
    );
    process.stdout.write(
      `# ${ROUNDS + 1} rounds in ${seconds.toFixed(1)} s: ${calls.length} Route53 calls, ${throttled.length} throttled\n`,
    );
  });
});
