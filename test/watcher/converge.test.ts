// One run of the watcher against in-memory doubles of its three dependencies (in-memory.ts): what
// converge decides (lock, stale index, floor, cap, exclusions, catch-up, re-plan) and what status it
// records. The component tests (catch-up, exclude-floor, scenarios-*) run the same code on the doubles.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { watcherConfigSchema, type WatcherConfig } from '../../watcher/config.ts';
import { converge, exclusionImpact, RetriesExhaustedError, type ConvergeDeps } from '../../watcher/converge.ts';
import type { DnsRecord, Health } from '../../watcher/model.ts';
import type { Snapshot } from '../../watcher/source/source.ts';
import { LockLostError, LockTimeoutError } from '../../watcher/state/consul-state.ts';
import { InMemoryDns, InMemoryRegistry, InMemorySource } from './in-memory.ts';

const config: WatcherConfig = {
  ...watcherConfigSchema.parse({ recordName: 'play.example.com', zoneId: 'Z1', minHealthy: 2, maxDeletesPerRun: 10 }),
  consulAddress: '127.0.0.1:8500',
  consulToken: undefined,
  consulTls: undefined,
  consulWarnings: [],
};

const addressOf = (node: string) => `10.0.0.${node.slice(-1)}`;
const record = (node: string): DnsRecord => ({
  name: 'play.example.com.',
  type: 'A',
  setIdentifier: `st-api/${node}/st-api`,
  ttl: 30,
  values: [addressOf(node)],
});
const snapshotOf = (index: number, health: Record<string, Health>): Snapshot => ({
  index,
  source: 'watch',
  instances: Object.entries(health).map(([node, h]) => ({ node, serviceId: 'st-api', ipv4: addressOf(node), ipv6: undefined, health: h })),
});
const inDns = (...nodes: string[]) => nodes.map((node) => `A st-api/${node}/st-api`).sort();

/** A world: what Consul says now, DNS as it is, and the registry; `run` is one handler invocation with `snapshot`. */
function world({ consul, dns = [], overrides = {} }: { consul: Snapshot; dns?: string[]; overrides?: Partial<WatcherConfig> }) {
  const source = new InMemorySource({ ...consul, source: 'consul' });
  const registry = new InMemoryRegistry();
  const provider = new InMemoryDns(dns.map(record));
  const deps: ConvergeDeps = {
    config: { ...config, ...overrides },
    source,
    registry,
    provider,
    logger: pino({ level: 'silent' }),
    now: () => new Date('2026-12-01T00:00:00Z'),
    holder: 'test',
  };
  return { source, registry, provider, deps, run: (snapshot: Snapshot = consul) => converge(deps, 'handle', snapshot) };
}

describe('converge', () => {
  it('when DNS is empty and two nodes pass, then both are published, the status says applied at the snapshot index, and the lock is released', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    const result = await w.run();
    assert.equal(result.result, 'applied');
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2'));
    assert.deepEqual(result.changeIds, ['C2']);
    assert.equal(w.registry.status?.result, 'applied');
    assert.equal(w.registry.status?.appliedIndex, 7);
    assert.deepEqual(w.registry.status?.changes, { create: 2, upsert: 0, delete: 0, deferredDeletes: 0 });
    assert.equal(w.registry.status?.route53Calls, 2, 'one list, one batch');
    assert.equal(w.registry.heldBy, undefined);
  });

  it('when a run changes DNS, then the status records it as the last change; a later unchanged run keeps that time', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    await w.run();
    assert.equal(w.registry.status?.lastChange, '2026-12-01T00:00:00.000Z');
    w.deps.now = () => new Date('2026-12-01T00:05:00Z');
    await w.run();
    assert.equal(w.registry.status?.result, 'unchanged');
    assert.equal(w.registry.status?.lastRun, '2026-12-01T00:05:00.000Z');
    assert.equal(w.registry.status?.lastChange, '2026-12-01T00:00:00.000Z');
  });

  it('when DNS already matches, then nothing is applied and the status says unchanged', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }), dns: ['n1', 'n2'] });
    const result = await w.run();
    assert.equal(result.result, 'unchanged');
    assert.deepEqual(result.changeIds, []);
    assert.equal(w.registry.status?.result, 'unchanged');
    assert.equal(w.registry.status?.message, '2 node(s) in DNS; 2 eligible');
  });

  it('when fewer nodes pass than the floor, then the most credible published node stays and the status says FLOOR ENGAGED', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'critical', n3: 'critical' }), dns: ['n1', 'n2', 'n3'] });
    await w.run();
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2'));
    assert.equal(w.registry.status?.floorEngaged, true);
    assert.deepEqual(w.registry.status?.keptByFloor, ['n2']);
    assert.match(w.registry.status?.message ?? '', /FLOOR ENGAGED \(min 2; kept n2\)/);
  });

  it('when the zone is empty and fewer nodes pass than the floor (checks start critical), then the passing one is created and nothing says FLOOR ENGAGED', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'critical', n3: 'critical' }) });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    await converge({ ...w.deps, logger }, 'handle', snapshotOf(7, { n1: 'passing', n2: 'critical', n3: 'critical' }));
    assert.deepEqual(w.provider.keys(), inDns('n1'));
    assert.deepEqual([w.registry.status?.belowFloor, w.registry.status?.floorEngaged], [true, false]);
    assert.doesNotMatch(w.registry.status?.message ?? '', /FLOOR ENGAGED/);
    assert.match(w.registry.status?.message ?? '', /below the floor \(min 2\) with nothing else published to keep/);
    assert.deepEqual(
      lines.filter((line) => line.level >= 40),
      [],
      'nothing at warn or error',
    );
    assert.ok(lines.some((line) => line.level === 30 && /fewer eligible nodes than minHealthy/.test(line.msg)));
    assert.ok(!lines.some((line) => /FLOOR ENGAGED/.test(line.msg)));
  });

  it('when the floor keeps a node, then FLOOR ENGAGED is logged at error level', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'critical' }), dns: ['n1', 'n2'] });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    await converge({ ...w.deps, logger }, 'handle', snapshotOf(7, { n1: 'passing', n2: 'critical' }));
    assert.ok(lines.some((line) => line.level === 50 && /^FLOOR ENGAGED/.test(line.msg)));
  });

  it('when more records must go than the cap, then the rest wait for a later run and the status counts them', async () => {
    const dead = { n3: 'critical', n4: 'critical', n5: 'critical', n6: 'critical' } as const;
    const w = world({
      consul: snapshotOf(7, { n1: 'passing', n2: 'passing', ...dead }),
      dns: ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'],
      overrides: { maxDeletesPerRun: 3 },
    });
    await w.run();
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2', 'n6'));
    assert.deepEqual(w.registry.status?.changes, { create: 0, upsert: 0, delete: 3, deferredDeletes: 1 });
    assert.match(w.registry.status?.message ?? '', /1 deletion\(s\) deferred by the per-run cap/);
  });

  it('when Consul moves on during the run, then the run converges again before releasing the lock, and the cap counts the whole run', async () => {
    const w = world({
      consul: snapshotOf(7, { n1: 'passing', n2: 'passing', n3: 'critical' }),
      dns: ['n1', 'n2', 'n3', 'n4'],
      overrides: { maxDeletesPerRun: 1 },
    });
    w.provider.afterBatch = () => {
      w.source.snapshot = { ...snapshotOf(8, { n1: 'passing', n2: 'passing', n3: 'critical', n4: 'critical' }), source: 'consul' };
    };
    const result = await w.run(snapshotOf(7, { n1: 'passing', n2: 'passing', n3: 'critical', n4: 'passing' }));
    assert.equal(result.snapshot.index, 8);
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2', 'n4'), 'n4 failed after the first pass used the one deletion allowed');
    assert.deepEqual(w.registry.status?.changes, { create: 0, upsert: 0, delete: 1, deferredDeletes: 1 });
    assert.match(w.registry.status?.message ?? '', /caught up from Consul index 7 to 8/);
  });

  it('when a node is excluded, then it is kept out of DNS, and an exclusion written by hand is named in the status', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing', n3: 'passing', n4: 'passing' }), dns: ['n1', 'n2', 'n3'] });
    w.registry.exclusionList = [
      { node: 'n3', reason: 'disk', by: 'ops', at: '2026-12-01T00:00:00Z' },
      { node: 'n4', reason: 'maintenance', by: 'hand-written KV value', at: '', handWritten: true },
    ];
    await w.run();
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2'));
    assert.deepEqual(w.registry.status?.excluded, ['n3', 'n4']);
    assert.deepEqual(w.registry.status?.handWrittenExclusions, ['n4']);
    assert.match(w.registry.status?.message ?? '', /hand-written exclusion\(s\), not JSON: n4/);
  });

  it('when the snapshot is older than the index DNS already reflects, then DNS is not rolled back: the run converges to what Consul says now', async () => {
    const w = world({ consul: snapshotOf(12, { n1: 'passing', n2: 'passing', n3: 'passing' }), dns: ['n1', 'n2', 'n3'] });
    await w.run();
    assert.equal(w.registry.status?.appliedIndex, 12);
    const result = await w.run(snapshotOf(5, { n1: 'passing', n2: 'passing', n3: 'critical' }));
    assert.equal(result.result, 'stale-replaced');
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2', 'n3'));
    assert.equal(w.registry.status?.appliedIndex, 12);
  });

  it('when another watcher holds the lock, then the run times out and touches neither DNS nor the status', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    w.registry.heldBy = 'another agent';
    await assert.rejects(w.run(), LockTimeoutError);
    assert.equal(w.provider.calls, 0);
    assert.equal(w.registry.statusWrites, 0);
  });

  it('when the lock is lost before a write, then the run stops before applying and records no status', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    w.registry.loseLock();
    await assert.rejects(w.run(), LockLostError);
    assert.deepEqual(w.provider.keys(), []);
    assert.equal(w.registry.statusWrites, 0);
  });

  it('when the provider rejects a batch, then the run re-plans against fresh records; after replanAttempts rejections it gives up', async () => {
    const once = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    once.provider.rejectBatches = 1;
    assert.equal((await once.run()).result, 'applied');
    assert.deepEqual(once.provider.keys(), inDns('n1', 'n2'));

    const always = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }), overrides: { replanAttempts: 3 } });
    always.provider.rejectBatches = 3;
    await assert.rejects(always.run(), RetriesExhaustedError);
    assert.equal(always.registry.statusWrites, 0);
  });

  it('when Consul stops answering after the run applied its changes, then the run still succeeds with status applied', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing' }) });
    w.source.fail = new Error('connect ECONNREFUSED');
    const result = await w.run();
    assert.equal(result.result, 'applied');
    assert.equal(w.registry.status?.result, 'applied');
    assert.deepEqual(w.provider.keys(), inDns('n1', 'n2'));
  });
});

describe('exclusionImpact', () => {
  it('when excluding a node would leave fewer eligible nodes than the floor, then it breaks the floor, by the rule a run applies', async () => {
    const w = world({ consul: snapshotOf(7, { n1: 'passing', n2: 'passing', n3: 'critical' }), dns: ['n1', 'n2'] });
    const impact = await exclusionImpact(w.deps, 'n2');
    assert.equal(impact.breaksFloor, true);
    assert.deepEqual(impact.after.keptByFloor, []);
    assert.deepEqual(impact.after.published, ['n1']);
    const unknown = await exclusionImpact(w.deps, 'n9');
    assert.equal(unknown.known, false);
    assert.equal(unknown.breaksFloor, false);
  });
});
