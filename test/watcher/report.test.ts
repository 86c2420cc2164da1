// What `plan` and `status` print (watcher/report.ts), from named situations: each record with its node
// and why, the counts after the list, the floor's marker, the failing checks' output and "ago" times.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord, Health, Instance } from '../../watcher/model.ts';
import type { PlanPolicy } from '../../watcher/plan/plan.ts';
import { planWithPolicies } from '../../watcher/plan/policy.ts';
import { ago, explainPlan, planText, statusRows, statusText, type ReportInput } from '../../watcher/report.ts';
import type { Exclusion, RunStatus } from '../../watcher/state/consul-state.ts';
import { policy } from './plan-fixtures.ts';

const addressOf = (node: string) => `10.0.0.${node.replace(/\D/g, '')}`;
const instance = (node: string, health: Health, output = ''): Instance => ({
  node,
  serviceId: 'st-api',
  ipv4: addressOf(node),
  ipv6: undefined,
  health,
  failingChecks: health === 'passing' ? [] : [{ name: 'st-api deep health', status: health, output }],
});
const record = (node: string, values = [addressOf(node)], ttl = 30): DnsRecord => ({
  name: 'play.example.com.',
  type: 'A',
  setIdentifier: `st-api/${node}/st-api`,
  ttl,
  values,
});
const exclusion = (node: string, reason: string): Exclusion => ({ node, reason, by: 'alice', at: '2026-12-01T02:50:00.000Z' });

function input(
  current: DnsRecord[],
  instances: Instance[],
  exclusions: Exclusion[] = [],
  overrides: Partial<PlanPolicy> = {},
): ReportInput {
  const merged = { ...policy, ...overrides };
  const plan = planWithPolicies({ current, instances, excluded: new Set(exclusions.map((e) => e.node)), policy: merged });
  return { plan, current, instances, exclusions, policy: merged };
}

const NOW = new Date('2026-12-01T03:00:00.000Z');

describe('plan as text', () => {
  it('when the zone is empty, then each record to create is listed with its node, value and why, and the counts come after the list', () => {
    const text = planText(input([], [instance('n1', 'passing'), instance('n2', 'passing')]));
    assert.equal(
      text,
      [
        '  + CREATE A     n1    10.0.0.1  passing, not in DNS yet',
        '  + CREATE A     n2    10.0.0.2  passing, not in DNS yet',
        '',
        '2 to create, 0 to update, 0 to delete',
        'in DNS after apply: 2 node(s) (n1, n2); eligible: 2 of 2 in Consul (minHealthy 2)',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(text, /FLOOR/);
  });

  it('when records go, then each says why: excluded (with the reason and who), critical (with its check output), gone from Consul', () => {
    const changes = explainPlan(
      input(
        [record('n1'), record('n2'), record('n3'), record('n4'), record('n5')],
        [
          instance('n1', 'passing'),
          instance('n2', 'passing'),
          instance('n3', 'critical', 'HTTP GET /health/deep: 503'),
          instance('n4', 'passing'),
        ],
        [exclusion('n4', 'kernel upgrade')],
      ),
    );
    assert.deepEqual(
      changes.map((c) => [c.action, c.node, c.reason]),
      [
        ['DELETE', 'n3', 'critical: st-api deep health: HTTP GET /health/deep: 503'],
        ['DELETE', 'n4', 'excluded: kernel upgrade (alice)'],
        ['DELETE', 'n5', 'gone from Consul'],
      ],
    );
  });

  it('when a record holds another value or TTL, then the update says what DNS holds now', () => {
    const changes = explainPlan(
      input([record('n1', ['192.0.2.9'], 300), record('n2')], [instance('n1', 'passing'), instance('n2', 'passing')]),
    );
    assert.deepEqual(
      changes.map((c) => [c.action, c.node, c.values, c.reason]),
      [['UPSERT', 'n1', ['10.0.0.1'], 'in DNS as 192.0.2.9 TTL 300']],
    );
  });

  it('when the floor keeps nodes, then they are listed as KEEP with why they are not eligible, and the summary says FLOOR ENGAGED', () => {
    const situation = input(
      [record('n1'), record('n2'), record('n3')],
      [instance('n1', 'passing'), instance('n2', 'critical', 'mysql down'), instance('n3', 'critical')],
    );
    const text = planText(situation);
    assert.match(text, /^ {2}= KEEP {3}A +n2 +10\.0\.0\.2 +kept by the floor \(minHealthy 2\); critical: st-api deep health: mysql down$/m);
    assert.match(text, /^ {2}- DELETE A +n3 +10\.0\.0\.3 +critical: st-api deep health: critical$/m);
    assert.match(text, /\n\n0 to create, 0 to update, 1 to delete\n/);
    assert.match(text, /\nFLOOR ENGAGED: n2 kept in DNS although not eligible \(minHealthy 2\)\n$/);
  });

  it('when the zone is empty and fewer nodes pass than the floor, then the record is created and the summary says below the floor, not FLOOR ENGAGED', () => {
    const text = planText(input([], [instance('n1', 'passing'), instance('n2', 'critical')]));
    assert.match(text, /\+ CREATE A +n1/);
    assert.doesNotMatch(text, /FLOOR ENGAGED|KEEP/);
    assert.match(text, /below the floor \(minHealthy 2\), with no other published node to keep\n$/);
  });

  it('when deletions pass the per-run cap, then the rest are listed as DEFER with the cap', () => {
    const text = planText(
      input(
        [record('n1'), record('n2'), record('n3'), record('n4')],
        [instance('n1', 'passing'), instance('n2', 'passing'), instance('n3', 'critical'), instance('n4', 'critical')],
        [],
        { maxDeletesPerRun: 1 },
      ),
    );
    assert.match(text, /^ {2}- DELETE A +n3 /m);
    assert.match(text, /^ {2}\. DEFER {2}A +n4 +10\.0\.0\.4 +waits for a later run \(at most 1 deletion\(s\) per run\); critical/m);
    assert.match(text, /0 to create, 0 to update, 1 to delete, 1 deferred\n/);
  });

  it('when nothing changes, then it says so above the counts', () => {
    const text = planText(input([record('n1'), record('n2')], [instance('n1', 'passing'), instance('n2', 'passing')]));
    assert.match(text, /^no changes\n0 to create, 0 to update, 0 to delete\n/);
  });

  it('when a node name or a check output holds control or bidi characters, then they are escaped', () => {
    const text = planText(input([record('evil\u202e\nnode'), record('n2')], [instance('n2', 'passing'), instance('n3', 'passing')]));
    assert.doesNotMatch(text, /\u202e/);
    assert.match(text, /evil\\u202e\\u000anode/);
  });
});

describe('status as text', () => {
  const last: RunStatus = {
    lastRun: '2026-12-01T02:59:48.000Z',
    command: 'handle',
    result: 'applied',
    message: '2 node(s) in DNS; 1 eligible; FLOOR ENGAGED (min 2; kept n2)',
    consulIndex: 9,
    appliedIndex: 9,
    lastChange: '2026-12-01T02:47:00.000Z',
    belowFloor: true,
    floorEngaged: true,
    published: ['n1', 'n2'],
    eligible: ['n1'],
    excluded: ['n3'],
    handWrittenExclusions: [],
    keptByFloor: ['n2'],
    skipped: [],
    changes: { create: 0, upsert: 0, delete: 1, deferredDeletes: 0 },
    route53Calls: 2,
  };
  const situation = input(
    [record('n1'), record('n2')],
    [
      instance('n1', 'passing'),
      instance('n2', 'critical', 'HTTP GET http://10.0.0.2:8080/health/deep: 503 Service Unavailable'),
      instance('n3', 'passing'),
    ],
    [exclusion('n3', 'kernel upgrade')],
  );

  it('when a node is critical and kept by the floor, then its row shows its address and the marker, and its check output follows', () => {
    const text = statusText({ ...situation, last, now: NOW });
    const lines = text.split('\n');
    assert.equal(lines[0], 'node  address   consul       in DNS              excluded');
    assert.equal(lines[1], 'n1    10.0.0.1  passing      yes                 no');
    assert.equal(lines[2], 'n2    10.0.0.2  critical     yes, kept by floor  no');
    assert.equal(lines[3], '    critical: st-api deep health: HTTP GET http://10.0.0.2:8080/health/deep: 503 Service Unavailable');
    assert.equal(lines[4], 'n3    10.0.0.3  passing      no                  yes: kernel upgrade (alice, 10m ago)');
    assert.match(text, /\nFLOOR ENGAGED: n2 kept in DNS although not eligible: only 1 eligible, minHealthy 2\n/);
  });

  it('when the last run and the last change are recorded, then both show how long ago', () => {
    const text = statusText({ ...situation, last, now: NOW });
    assert.match(text, /\nlast run: {4}12s ago \(2026-12-01T02:59:48\.000Z\) handle → applied: 2 node\(s\) in DNS/);
    assert.match(text, /\nlast change: 13m ago \(2026-12-01T02:47:00\.000Z\)\n$/);
    const { lastChange, ...fields } = last;
    assert.ok(lastChange !== null);
    const writtenBefore = fields as RunStatus;
    const older = statusText({ ...situation, last: writtenBefore, now: NOW });
    assert.match(older, /\nlast change: none recorded\n$/, 'a status written before lastChange existed');
    assert.match(statusText({ ...situation, last: undefined, now: NOW }), /\nlast run: {4}none recorded\n$/);
  });

  it('when the rows are asked for as data (--json), then each carries addresses, failing checks, the floor marker and the exclusion', () => {
    const rows = statusRows(situation);
    assert.deepEqual(rows[1], {
      node: 'n2',
      addresses: ['10.0.0.2'],
      consul: 'critical',
      failingChecks: [
        { name: 'st-api deep health', status: 'critical', output: 'HTTP GET http://10.0.0.2:8080/health/deep: 503 Service Unavailable' },
      ],
      inDns: true,
      keptByFloor: true,
      excluded: null,
    });
    assert.deepEqual(rows[2]?.excluded, { reason: 'kernel upgrade', by: 'alice', at: '2026-12-01T02:50:00.000Z' });
  });

  it('when a node left Consul but is still in DNS, then its address comes from DNS and its health reads absent', () => {
    const rows = statusRows(input([record('n1'), record('n2'), record('n9')], [instance('n1', 'passing'), instance('n2', 'passing')]));
    assert.deepEqual(
      rows.map((row) => [row.node, row.addresses, row.consul, row.inDns]),
      [
        ['n1', ['10.0.0.1'], 'passing', true],
        ['n2', ['10.0.0.2'], 'passing', true],
        ['n9', ['10.0.0.9'], 'absent', true],
      ],
    );
  });
});

describe('ago', () => {
  const cases: [string, string][] = [
    ['2026-12-01T03:00:00.000Z', '0s ago'],
    ['2026-12-01T02:59:18.000Z', '42s ago'],
    ['2026-12-01T02:55:00.000Z', '5m ago'],
    ['2026-12-01T00:48:00.000Z', '2h 12m ago'],
    ['2026-11-28T23:00:00.000Z', '2d 4h ago'],
    ['2026-12-01T03:05:00.000Z', 'in the future (clocks differ)'],
    ['not a time', 'not a time'],
  ];
  for (const [time, expected] of cases) {
    it(`when the time is ${time}, then ${expected}`, () => assert.equal(ago(time, NOW), expected));
  }
});
