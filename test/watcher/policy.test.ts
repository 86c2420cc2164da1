// The policies applied after the diff (watcher/plan/policy.ts), one fixture table each: a row is a
// situation and what the policy leaves of the diff. plan-policies.test.ts has the edge cases through
// planWithPolicies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord, Health, Instance } from '../../watcher/model.ts';
import { computePlan, type Plan, type PlanInput } from '../../watcher/plan/plan.ts';
import { capDeletions, keepFloor } from '../../watcher/plan/policy.ts';
import { keys, policy } from './plan-fixtures.ts';

const addressOf = (node: string) => `10.0.0.${node.slice(1)}`;
const instance = (node: string, health: Health): Instance => ({
  node,
  serviceId: 'st-api',
  ipv4: addressOf(node),
  ipv6: undefined,
  health,
});
const record = (node: string, type: 'A' | 'AAAA' = 'A'): DnsRecord => ({
  name: 'play.example.com.',
  type,
  setIdentifier: `st-api/${node}/st-api`,
  ttl: 30,
  values: [type === 'A' ? addressOf(node) : `2001:db8::${node.slice(1)}`],
});

describe('keepFloor', () => {
  // Named fixtures: what Consul says (node → health, absent = left Consul) and which nodes DNS holds.
  const rows: {
    when: string;
    dns: string[];
    consul: Record<string, Health>;
    excluded?: string[];
    minHealthy?: number;
    kept: string[];
    deletes: string[];
    published: string[];
    belowFloor: boolean;
    floorEngaged: boolean;
  }[] = [
    {
      when: 'enough nodes are eligible',
      dns: ['n1', 'n2', 'n3'],
      consul: { n1: 'passing', n2: 'passing', n3: 'critical' },
      kept: [],
      deletes: ['n3'],
      published: ['n1', 'n2'],
      belowFloor: false,
      floorEngaged: false,
    },
    {
      when: 'one node short',
      dns: ['n1', 'n2', 'n3'],
      consul: { n1: 'passing', n2: 'critical', n3: 'critical' },
      kept: ['n2'],
      deletes: ['n3'],
      published: ['n1', 'n2'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'every node fails',
      dns: ['n1', 'n2', 'n3'],
      consul: { n1: 'critical', n2: 'critical', n3: 'critical' },
      kept: ['n1', 'n2'],
      deletes: ['n3'],
      published: ['n1', 'n2'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'Consul returns no instances',
      dns: ['n1', 'n2'],
      consul: {},
      kept: ['n1', 'n2'],
      deletes: [],
      published: ['n1', 'n2'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'a critical node competes with one that left Consul',
      dns: ['n1', 'n2'],
      consul: { n2: 'critical' },
      minHealthy: 1,
      kept: ['n2'],
      deletes: ['n1'],
      published: ['n2'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'a node in maintenance competes with one that left Consul',
      dns: ['n1', 'n2'],
      consul: { n2: 'maintenance' },
      minHealthy: 1,
      kept: ['n2'],
      deletes: ['n1'],
      published: ['n2'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'equally credible nodes compete',
      dns: ['n2', 'n1'],
      consul: { n1: 'critical', n2: 'maintenance' },
      minHealthy: 1,
      kept: ['n1'],
      deletes: ['n2'],
      published: ['n1'],
      belowFloor: true,
      floorEngaged: true,
    },
    {
      when: 'the only candidate is excluded',
      dns: ['n1', 'n2'],
      consul: { n1: 'passing', n2: 'passing' },
      excluded: ['n2'],
      kept: [],
      deletes: ['n2'],
      published: ['n1'],
      belowFloor: true,
      floorEngaged: false,
    },
    {
      when: 'nothing is published and nothing is healthy',
      dns: [],
      consul: { n1: 'critical' },
      kept: [],
      deletes: [],
      published: [],
      belowFloor: true,
      floorEngaged: false,
    },
    {
      when: 'the floor is zero',
      dns: ['n1'],
      consul: { n1: 'critical' },
      minHealthy: 0,
      kept: [],
      deletes: ['n1'],
      published: [],
      belowFloor: false,
      floorEngaged: false,
    },
  ];

  for (const row of rows) {
    it(`when ${row.when}, then it keeps ${row.kept.join(', ') || 'nothing'}`, () => {
      const input: PlanInput = {
        current: row.dns.map((node) => record(node)),
        instances: Object.entries(row.consul).map(([node, health]) => instance(node, health)),
        excluded: new Set(row.excluded ?? []),
        policy: { ...policy, minHealthy: row.minHealthy ?? policy.minHealthy },
      };
      const diff = computePlan(input);
      const plan = keepFloor(diff, input);
      assert.deepEqual(plan.keptByFloor, row.kept);
      assert.deepEqual(
        keys(plan.deletes),
        row.deletes.map((node) => `A st-api/${node}/st-api`),
      );
      assert.deepEqual(plan.published, row.published);
      assert.equal(plan.belowFloor, row.belowFloor);
      assert.equal(plan.floorEngaged, row.floorEngaged, 'engaged only when it keeps a node');
      assert.deepEqual(
        { creates: plan.creates, upserts: plan.upserts, eligible: plan.eligible },
        { creates: diff.creates, upserts: diff.upserts, eligible: diff.eligible },
        'the floor only takes deletions out',
      );
    });
  }

  it('when a warning node (not eligible here) competes with a critical one, then the warning node is kept with both its records', () => {
    const input: PlanInput = {
      current: [record('n1'), record('n1', 'AAAA'), record('n2'), record('n2', 'AAAA')],
      instances: [instance('n1', 'warning'), instance('n2', 'critical')],
      excluded: new Set(),
      policy: { ...policy, minHealthy: 1, warningIsHealthy: false },
    };
    const plan = keepFloor(computePlan(input), input);
    assert.deepEqual(plan.keptByFloor, ['n1']);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n2/st-api', 'AAAA st-api/n2/st-api']);
  });
});

describe('capDeletions', () => {
  const planDeleting = (nodes: string[], published: string[]): Plan => ({
    creates: [],
    upserts: [],
    deletes: nodes.map((node) => record(node)),
    deferredDeletes: [],
    published,
    eligible: published,
    belowFloor: false,
    floorEngaged: false,
    keptByFloor: [],
    skipped: [],
  });
  const rows: { when: string; deletes: string[]; cap: number; now: string[]; deferred: string[]; published: string[] }[] = [
    { when: 'fewer deletes than the cap', deletes: ['n1', 'n2'], cap: 3, now: ['n1', 'n2'], deferred: [], published: ['up1'] },
    { when: 'exactly the cap', deletes: ['n1', 'n2', 'n3'], cap: 3, now: ['n1', 'n2', 'n3'], deferred: [], published: ['up1'] },
    { when: 'one more than the cap', deletes: ['n1', 'n2', 'n3'], cap: 2, now: ['n1', 'n2'], deferred: ['n3'], published: ['n3', 'up1'] },
    { when: 'a cap of one', deletes: ['n1', 'n2', 'n3'], cap: 1, now: ['n1'], deferred: ['n2', 'n3'], published: ['n2', 'n3', 'up1'] },
    { when: 'a cap of zero', deletes: ['n1', 'n2'], cap: 0, now: [], deferred: ['n1', 'n2'], published: ['n1', 'n2', 'up1'] },
    { when: 'a negative cap', deletes: ['n1'], cap: -1, now: [], deferred: ['n1'], published: ['n1', 'up1'] },
    { when: 'nothing to delete', deletes: [], cap: 0, now: [], deferred: [], published: ['up1'] },
  ];

  for (const row of rows) {
    it(`when ${row.when}, then ${row.now.length} go now and ${row.deferred.length} wait, still published`, () => {
      const input: PlanInput = { current: [], instances: [], excluded: new Set(), policy: { ...policy, maxDeletesPerRun: row.cap } };
      const plan = capDeletions(planDeleting(row.deletes, ['up1']), input);
      assert.deepEqual(
        keys(plan.deletes),
        row.now.map((node) => `A st-api/${node}/st-api`),
      );
      assert.deepEqual(
        keys(plan.deferredDeletes),
        row.deferred.map((node) => `A st-api/${node}/st-api`),
      );
      assert.deepEqual(plan.published, row.published);
    });
  }
});
