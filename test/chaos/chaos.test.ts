// The chaos suite: its judges on made-up observations (each must be able to say "broken"), its
// command line, and a short fixed-seed round of the whole system as CI runs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../sentinel-hooks/system.ts';
import { InvariantMonitor, type Bounds, type Sample } from '../../testkit/chaos/invariants.ts';
import type { PlayRecord } from '../../testkit/chaos/load.ts';
import { mulberry32 } from '../../testkit/chaos/prng.ts';
import { EXIT_CODES, judgePlays, runChaos, type FaultRecord } from '../../testkit/chaos/run.ts';

const BOUNDS: Bounds = { criticalToOutMs: 5000, excludedToOutMs: 8000, failoverWindowMs: 10_000, statusStaleMs: 3000 };
const NODES = ['api-node-1', 'api-node-2', 'api-node-3'];

function sample(at: number, changes: Partial<Sample> = {}): Sample {
  const published = new Map(NODES.map((n, i) => [n, `127.0.10.${i + 1}`]));
  return {
    at,
    published,
    addressCount: published.size,
    health: new Map(NODES.map((n) => [n, 'passing'])),
    excluded: [],
    status: { published: [...NODES], keptByFloor: [], floorEngaged: false },
    healthyMasters: 1,
    taggedMasters: 1,
    watcherRunning: false,
    ...changes,
  };
}

/** Feeds samples every 250 ms from t=0 to `untilMs`; `at(t)` gives each one's deviations. */
function observe(untilMs: number, at: (t: number) => Partial<Sample>): InvariantMonitor {
  const monitor = new InvariantMonitor(BOUNDS);
  for (let t = 0; t <= untilMs; t += 250) monitor.observe(sample(t, at(t)));
  return monitor;
}

const names = (monitor: InvariantMonitor): string[] => monitor.violations.map((v) => v.invariant);

describe('invariants on made-up samples', () => {
  it('when every sample is whole, then nothing is broken', () => {
    assert.deepEqual(names(observe(60_000, () => ({}))), []);
  });

  it('when the record answers no address for one sample, then "DNS never empty" is broken once', () => {
    const monitor = observe(10_000, (t) => (t >= 2000 && t <= 3000 ? { addressCount: 0, published: new Map() } : {}));
    assert.deepEqual(names(monitor), ['DNS never empty']);
  });

  it('when a critical node stays published past the bound, then it is reported; within the bound, or kept by the floor, it is not', () => {
    const critical = (t: number): Partial<Sample> =>
      t >= 1000
        ? {
            health: new Map([
              ['api-node-1', 'critical'],
              ['api-node-2', 'passing'],
              ['api-node-3', 'passing'],
            ]),
          }
        : {};
    assert.deepEqual(names(observe(1000 + BOUNDS.criticalToOutMs + 500, critical)), ['a critical node leaves DNS in time']);
    assert.deepEqual(names(observe(1000 + BOUNDS.criticalToOutMs - 250, critical)), []);
    const kept = (t: number): Partial<Sample> => ({
      ...critical(t),
      status: { published: [...NODES], keptByFloor: ['api-node-1'], floorEngaged: true },
    });
    assert.deepEqual(names(observe(30_000, kept)), []);
    const left = (t: number): Partial<Sample> =>
      t >= 3000
        ? {
            ...critical(t),
            published: new Map([
              ['api-node-2', 'b'],
              ['api-node-3', 'c'],
            ]),
            addressCount: 2,
            status: { published: ['api-node-2', 'api-node-3'] },
          }
        : critical(t);
    const monitor = observe(30_000, left);
    assert.deepEqual(names(monitor), []);
    assert.equal(monitor.leftDnsAfter('api-node-1', 1000), 3000);
  });

  it('when an excluded node stays published past its bound, then it is reported', () => {
    const monitor = observe(2000 + BOUNDS.excludedToOutMs + 500, (t) => (t >= 2000 ? { excluded: ['api-node-2'] } : {}));
    assert.deepEqual(names(monitor), ['an excluded node leaves DNS in time']);
  });

  it('when two registrations are tagged master and healthy, then it is reported at once; none for longer than the window is too', () => {
    assert.deepEqual(names(observe(5000, (t) => (t === 1000 ? { healthyMasters: 2, taggedMasters: 2 } : {}))), [
      'one Redis master tag in Consul',
    ]);
    assert.deepEqual(
      names(observe(20_000, (t) => (t >= 1000 && t < 1000 + BOUNDS.failoverWindowMs - 500 ? { healthyMasters: 0 } : {}))),
      [],
    );
    assert.deepEqual(names(observe(20_000, (t) => (t >= 1000 ? { healthyMasters: 0 } : {}))), ['one Redis master tag in Consul']);
  });

  it('when status disagrees with DNS while no watcher runs, past the bound, then it is reported; while a watcher runs it is not judged', () => {
    const stale = { status: { published: ['api-node-1'] } };
    assert.deepEqual(names(observe(1000 + BOUNDS.statusStaleMs + 500, (t) => (t >= 1000 ? stale : {}))), [
      'st-api/dns/status tells the truth',
    ]);
    assert.deepEqual(names(observe(30_000, (t) => (t >= 1000 ? { ...stale, watcherRunning: true } : {}))), []);
  });
});

describe('plays judged against the faults in force', () => {
  const fault = (kind: string, from: number, to: number, mysqlDown: boolean): FaultRecord => ({
    kind,
    target: 't',
    injectedAt: from,
    healedAt: to,
    recoveredAt: to,
    outOfDnsAfterMs: null,
    nodeOut: undefined,
    mysqlDown,
    error: null,
  });
  const playAt = (startedAt: number, outcome: PlayRecord['outcome'], cause = ''): PlayRecord => ({
    startedAt,
    finishedAt: startedAt + 10,
    outcome,
    cause,
    attempts: 1,
  });
  const faults = [fault('kill -9 MariaDB', 1000, 5000, true), fault('kill -9 st-api node', 20_000, 30_000, false)];

  it('when a play gets the documented 503 while MySQL is down (or just after), then that is allowed', () => {
    assert.deepEqual(
      judgePlays([playAt(2000, 'documented-503'), playAt(7000, 'documented-503'), playAt(21_000, 'ok-after-retry')], faults),
      [],
    );
  });

  it('when a play started just before MariaDB stopped gets the documented 503, then that is allowed; one that ended before is not', () => {
    const straddling: PlayRecord = { startedAt: 900, finishedAt: 1400, outcome: 'documented-503', cause: '', attempts: 1 };
    const before: PlayRecord = { startedAt: 500, finishedAt: 900, outcome: 'documented-503', cause: '', attempts: 1 };
    assert.deepEqual(judgePlays([straddling], faults), []);
    assert.deepEqual(
      judgePlays([before], faults).map((v) => v.invariant),
      ['503 only while MySQL is gone'],
    );
  });

  it('when a play gets the documented 503 with MySQL up, or fails, then each is a violation', () => {
    const violations = judgePlays([playAt(25_000, 'documented-503'), playAt(40_000, 'failed', 'HTTP 500 INTERNAL')], faults);
    assert.deepEqual(
      violations.map((v) => v.invariant),
      ['503 only while MySQL is gone', 'no play fails'],
    );
    assert.match(violations[1]?.detail ?? '', /HTTP 500 INTERNAL/);
  });
});

describe('seeded PRNG', () => {
  it('when seeded alike, then it draws alike; another seed draws otherwise', () => {
    const draw = (seed: number): number[] => {
      const p = mulberry32(seed);
      return Array.from({ length: 8 }, () => p.int(0, 1000));
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
  });
});

describe('npm run chaos command line', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'testkit/chaos/main.ts'), ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });

  it('when asked for help, then it prints the usage and exits 0 without starting anything', () => {
    const result = cli(['--help']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /--seed N/);
  });

  it('when the seed is not a number, then it exits 2 (usage) and says why', () => {
    const result = cli(['--seed', 'abc']);
    assert.equal(result.status, EXIT_CODES.USAGE);
    assert.match(result.stderr, /--seed must be an integer/);
  });
});

describe('a short fixed-seed round of the whole system', { timeout: 240_000 }, () => {
  it('when seed 7 injects faults for 30 s under play load, then every invariant holds and at least 3 faults were injected and healed', async () => {
    const lines: string[] = [];
    // Seed 7 opens with kill -9 of an st-api node, SIGSTOP of MariaDB and kill -9 of the Redis master.
    const report = await runChaos({ seed: 7, durationMs: 30_000, log: (line) => lines.push(line) });
    const output = lines.join('\n');
    assert.equal(report.exitCode, EXIT_CODES.OK, output);
    assert.ok(report.faults.length >= 3, output);
    assert.ok(
      report.faults.every((f) => f.healedAt !== null && f.recoveredAt !== null),
      output,
    );
    assert.equal(report.plays.failed, 0, output);
    assert.ok(report.plays.ok + report.plays['ok-after-retry'] > 50, output);
  });
});
