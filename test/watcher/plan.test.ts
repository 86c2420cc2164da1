// The plan, case by case, with named fixtures (external-dns's plan_test.go is the model).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord, Health, Instance } from '../../watcher/model.ts';
import { computePlan, nodeOf, setIdentifierFor } from '../../watcher/plan/plan.ts';
import { planWithPolicies } from '../../watcher/plan/policy.ts';
import { none, planFor, policy } from './plan-fixtures.ts';

const NAME = 'play.example.com.';

const instance = (node: string, health: Health, ipv4 = `10.0.0.${node.slice(-1)}`, ipv6?: string): Instance => ({
  node,
  serviceId: 'st-api',
  ipv4,
  ipv6,
  health,
});
const record = (node: string, value = `10.0.0.${node.slice(-1)}`, overrides: Partial<DnsRecord> = {}): DnsRecord => ({
  name: NAME,
  type: 'A',
  setIdentifier: `st-api/${node}/st-api`,
  ttl: 30,
  values: [value],
  ...overrides,
});

// Named fixtures.
const node1Up = instance('node-1', 'passing');
const node2Up = instance('node-2', 'passing');
const node3Up = instance('node-3', 'passing');
const node2Down = instance('node-2', 'critical');
const node3Down = instance('node-3', 'critical');
const node3Warning = instance('node-3', 'warning');
const node3Maintenance = instance('node-3', 'maintenance');
const node4DualStack = instance('node-4', 'passing', '10.0.0.4', '2001:db8::4');

const summary = (plan: ReturnType<typeof computePlan>) => ({
  creates: plan.creates.map((r) => `${r.type} ${r.setIdentifier} ${r.values.join(',')}`),
  upserts: plan.upserts.map((r) => `${r.type} ${r.setIdentifier} ${r.values.join(',')}`),
  deletes: plan.deletes.map((r) => `${r.type} ${r.setIdentifier} ${r.values.join(',')}`),
});

describe('computePlan', () => {
  it('when DNS is empty and three nodes pass, then three records are created', () => {
    const plan = computePlan({ current: [], instances: [node1Up, node2Up, node3Up], excluded: none, policy });
    assert.deepEqual(summary(plan).creates, [
      'A st-api/node-1/st-api 10.0.0.1',
      'A st-api/node-2/st-api 10.0.0.2',
      'A st-api/node-3/st-api 10.0.0.3',
    ]);
    assert.deepEqual(plan.published, ['node-1', 'node-2', 'node-3']);
    assert.equal(plan.floorEngaged, false);
  });

  it('when DNS already matches, then nothing changes', () => {
    const plan = computePlan({ current: [record('node-1'), record('node-2')], instances: [node1Up, node2Up], excluded: none, policy });
    assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: [] });
  });

  it('when a node turns critical, then its record is deleted with its exact current values', () => {
    const plan = computePlan({
      current: [record('node-1'), record('node-2'), record('node-3')],
      instances: [node1Up, node2Up, node3Down],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: ['A st-api/node-3/st-api 10.0.0.3'] });
  });

  it('when a node is in warning, then it stays in by default and leaves when warnings count as out', () => {
    const current = [record('node-1'), record('node-2'), record('node-3')];
    assert.deepEqual(summary(computePlan({ current, instances: [node1Up, node2Up, node3Warning], excluded: none, policy })).deletes, []);
    const strict = computePlan({
      current,
      instances: [node1Up, node2Up, node3Warning],
      excluded: none,
      policy: { ...policy, warningIsHealthy: false },
    });
    assert.deepEqual(summary(strict).deletes, ['A st-api/node-3/st-api 10.0.0.3']);
  });

  it('when a node is in maintenance mode, then it is out even though its checks pass', () => {
    const plan = computePlan({
      current: [record('node-1'), record('node-2'), record('node-3')],
      instances: [node1Up, node2Up, node3Maintenance],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(plan).deletes, ['A st-api/node-3/st-api 10.0.0.3']);
  });

  it('when a node is excluded, then it is never published even while healthy', () => {
    const plan = computePlan({
      current: [record('node-1'), record('node-2')],
      instances: [node1Up, node2Up, node3Up],
      excluded: new Set(['node-3']),
      policy,
    });
    assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: [] });
    assert.deepEqual(plan.published, ['node-1', 'node-2']);
  });

  it('when a published node is excluded, then its record is deleted', () => {
    const plan = computePlan({
      current: [record('node-1'), record('node-2'), record('node-3')],
      instances: [node1Up, node2Up, node3Up],
      excluded: new Set(['node-2']),
      policy,
    });
    assert.deepEqual(summary(plan).deletes, ['A st-api/node-2/st-api 10.0.0.2']);
  });

  it('when a node has an IPv6 address too, then it gets an AAAA record beside its A record', () => {
    const plan = computePlan({ current: [], instances: [node1Up, node4DualStack], excluded: none, policy });
    assert.deepEqual(summary(plan).creates, [
      'A st-api/node-1/st-api 10.0.0.1',
      'A st-api/node-4/st-api 10.0.0.4',
      'AAAA st-api/node-4/st-api 2001:db8::4',
    ]);
  });

  it('when a node moves to a new address or the TTL changes, then its record is upserted', () => {
    const moved = computePlan({
      current: [record('node-1'), record('node-2')],
      instances: [node1Up, instance('node-2', 'passing', '10.0.9.9')],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(moved), { creates: [], upserts: ['A st-api/node-2/st-api 10.0.9.9'], deletes: [] });
    const retimed = computePlan({
      current: [record('node-1', '10.0.0.1', { ttl: 300 }), record('node-2')],
      instances: [node1Up, node2Up],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(retimed).upserts, ['A st-api/node-1/st-api 10.0.0.1']);
  });

  it('when a record was edited by hand to hold two values, then it is upserted back to one', () => {
    const plan = computePlan({
      current: [record('node-1', '10.0.0.1', { values: ['10.0.0.1', '192.0.2.66'] }), record('node-2')],
      instances: [node1Up, node2Up],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(plan).upserts, ['A st-api/node-1/st-api 10.0.0.1']);
  });

  it('when a node left Consul entirely, then its record is deleted', () => {
    const plan = computePlan({
      current: [record('node-1'), record('node-2'), record('node-3')],
      instances: [node1Up, node2Up],
      excluded: none,
      policy,
    });
    assert.deepEqual(summary(plan).deletes, ['A st-api/node-3/st-api 10.0.0.3']);
  });

  describe('registrations Route53 would refuse, or that must never be published', () => {
    const skippedOf = (plan: ReturnType<typeof computePlan>) => plan.skipped.map((s) => `${s.node}: ${s.reason}`);

    it('when a node name is so long that its SetIdentifier would pass 128 characters, then that node is skipped and the dead node is still deleted', () => {
      const long = 'n'.repeat(310);
      const plan = computePlan({
        current: [record('node-1'), record('node-2'), record('node-3')],
        instances: [node1Up, node2Up, node3Down, instance(long, 'passing', '10.0.0.9')],
        excluded: none,
        policy,
      });
      assert.deepEqual(skippedOf(plan), [
        `${long}: its SetIdentifier would be 324 characters; Route53 accepts at most 128 (shorten the node name or service id)`,
      ]);
      assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: ['A st-api/node-3/st-api 10.0.0.3'] });
      assert.deepEqual(plan.eligible, ['node-1', 'node-2']);
    });

    it('when a node name holds a slash, a newline, bidi or non-ASCII characters, then its SetIdentifier is ASCII within 128 characters and reads back as the exact name', () => {
      const names = ['slash/node', 'line\nbreak', 'evil\u202enode', 'per%cent', 'Zürich-1', '東京', "it's(*)~!", 'x'.repeat(109)];
      for (const name of names) {
        const setIdentifier = setIdentifierFor('st-api', { node: name, serviceId: 'st-api/v2' });
        assert.match(setIdentifier, /^st-api\/[A-Za-z0-9._%-]+\/st-api%2Fv2$/, setIdentifier);
        assert.ok(setIdentifier.length <= 128, name);
        assert.equal(nodeOf('st-api', { setIdentifier }), name);
      }
      const plan = computePlan({
        current: [],
        instances: names.map((name) => instance(name, 'passing', '10.0.0.5')),
        excluded: none,
        policy,
      });
      assert.deepEqual(plan.skipped, []);
      assert.deepEqual(plan.published, [...names].sort());
    });

    it('when names are ordinary, then SetIdentifiers are the ones earlier versions wrote, so their records stay ours', () => {
      assert.equal(setIdentifierFor('st-api', { node: 'api-node-7.eu_west', serviceId: 'st-api' }), 'st-api/api-node-7.eu_west/st-api');
      const plan = computePlan({ current: [record('node-1'), record('node-2')], instances: [node1Up, node2Up], excluded: none, policy });
      assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: [] });
    });

    it('when a name is not well-formed Unicode (a lone surrogate), then it is skipped rather than throwing', () => {
      const plan = computePlan({
        current: [],
        instances: [node1Up, node2Up, instance('bad\ud800', 'passing', '10.0.0.7')],
        excluded: none,
        policy,
      });
      assert.deepEqual(skippedOf(plan), ['bad\ud800: node name or service id is not well-formed Unicode (a lone surrogate)']);
      assert.equal(plan.creates.length, 2);
    });

    it('when an address is unspecified, loopback, link-local, multicast or broadcast, then it is never published, with the reason', () => {
      const cases: [string, string][] = [
        ['0.0.0.0', 'unspecified'],
        ['0.1.2.3', 'unspecified'],
        ['127.0.0.1', 'loopback'],
        ['127.9.9.9', 'loopback'],
        ['169.254.1.1', 'link-local'],
        ['224.0.0.1', 'multicast'],
        ['239.255.255.250', 'multicast'],
        ['255.255.255.255', 'broadcast'],
      ];
      const plan = computePlan({
        current: [],
        instances: [node1Up, node2Up, ...cases.map(([ip], i) => instance(`bad-${i}`, 'passing', ip))],
        excluded: none,
        policy,
      });
      assert.deepEqual(
        skippedOf(plan),
        cases.map(([ip, reason], i) => `bad-${i}: A ${ip}: ${reason}`),
      );
      assert.deepEqual(plan.published, ['node-1', 'node-2']);
      const v6: [string, string][] = [
        ['::', 'unspecified'],
        ['::1', 'loopback'],
        ['fe80::1', 'link-local'],
        ['ff02::1', 'multicast'],
        ['::ffff:127.0.0.1', 'loopback'],
      ];
      const plan6 = computePlan({
        current: [],
        instances: v6.map(([ip], i) => ({ node: `v6-${i}`, serviceId: 'st-api', ipv4: undefined, ipv6: ip, health: 'passing' as const })),
        excluded: none,
        policy,
      });
      assert.deepEqual(
        skippedOf(plan6),
        v6.map(([ip, reason], i) => `v6-${i}: AAAA ${ip}: ${reason}`),
      );
      assert.deepEqual(plan6.creates, []);
    });

    it('when an IPv6 address carries a zone index (fe80::1%eth0), then only that AAAA is left out and the node keeps its A record', () => {
      const plan = computePlan({
        current: [],
        instances: [
          node1Up,
          instance('node-2', 'passing', '10.0.0.2', 'fe80::1%eth0'),
          instance('node-3', 'passing', '10.0.0.3', '2001:db8::3%eth0'),
        ],
        excluded: none,
        policy,
      });
      assert.deepEqual(skippedOf(plan), [
        'node-2: AAAA fe80::1%eth0: scoped address (zone index): Route53 refuses it',
        'node-3: AAAA 2001:db8::3%eth0: scoped address (zone index): Route53 refuses it',
      ]);
      assert.deepEqual(summary(plan).creates, [
        'A st-api/node-1/st-api 10.0.0.1',
        'A st-api/node-2/st-api 10.0.0.2',
        'A st-api/node-3/st-api 10.0.0.3',
      ]);
    });

    it('when a published node now reports a loopback address, then its record is deleted like a node that left', () => {
      const plan = computePlan({
        current: [record('node-1'), record('node-2'), record('node-3')],
        instances: [node1Up, node2Up, instance('node-3', 'passing', '127.0.0.1')],
        excluded: none,
        policy,
      });
      assert.deepEqual(summary(plan).deletes, ['A st-api/node-3/st-api 10.0.0.3']);
    });

    it('when publishLoopback is set (test rigs), then loopback is published, and the other ranges are still refused', () => {
      const plan = computePlan({
        current: [],
        instances: [instance('node-1', 'passing', '127.0.2.1'), instance('node-2', 'passing', '0.0.0.0')],
        excluded: none,
        policy: { ...policy, publishLoopback: true },
      });
      assert.deepEqual(summary(plan).creates, ['A st-api/node-1/st-api 127.0.2.1']);
      assert.deepEqual(skippedOf(plan), ['node-2: A 0.0.0.0: unspecified']);
    });

    it('when a healthy instance has no address at all, then it is skipped and does not count towards the floor', () => {
      const plan = planFor(
        [record('node-1'), record('node-2')],
        [node1Up, { node: 'node-2', serviceId: 'st-api', ipv4: undefined, ipv6: undefined, health: 'passing' }],
      );
      assert.deepEqual(skippedOf(plan), ['node-2: no IPv4 or IPv6 address in Consul']);
      assert.equal(plan.floorEngaged, true);
      assert.deepEqual(plan.keptByFloor, ['node-2']);
    });
  });
});

describe('planWithPolicies: the diff, then the floor and the deletion cap', () => {
  describe('floor', () => {
    it('when every node fails at once, then the floor keeps the minimum of published records and says so', () => {
      const plan = planFor([record('node-1'), record('node-2'), record('node-3')], [instance('node-1', 'critical'), node2Down, node3Down]);
      assert.equal(plan.floorEngaged, true);
      assert.deepEqual(plan.keptByFloor, ['node-1', 'node-2']);
      assert.deepEqual(summary(plan).deletes, ['A st-api/node-3/st-api 10.0.0.3']);
      assert.deepEqual(plan.published, ['node-1', 'node-2']);
    });

    it('when Consul returns no instances at all, then DNS is not emptied', () => {
      const plan = planFor([record('node-1'), record('node-2'), record('node-3')], []);
      assert.equal(plan.floorEngaged, true);
      assert.equal(plan.published.length, 2);
    });

    it('when one node is healthy and the floor is two, then the most credible failing node is kept beside it', () => {
      const plan = planFor([record('node-1'), record('node-2'), record('node-3')], [node1Up, node2Down, node3Warning], {
        warningIsHealthy: false,
      });
      assert.deepEqual(plan.keptByFloor, ['node-3']);
      assert.deepEqual(summary(plan).deletes, ['A st-api/node-2/st-api 10.0.0.2']);
    });

    it('when the floor is engaged, then an excluded node is still never kept', () => {
      const plan = planWithPolicies({
        current: [record('node-1'), record('node-2')],
        instances: [instance('node-1', 'critical'), node2Down],
        excluded: new Set(['node-1']),
        policy,
      });
      assert.deepEqual(plan.keptByFloor, ['node-2']);
      assert.deepEqual(summary(plan).deletes, ['A st-api/node-1/st-api 10.0.0.1']);
    });

    it('when nothing is published yet and nothing is healthy, then nothing is created; below the floor, but nothing to keep, so not engaged', () => {
      const plan = planFor([], [node2Down]);
      assert.deepEqual(summary(plan), { creates: [], upserts: [], deletes: [] });
      assert.deepEqual([plan.belowFloor, plan.floorEngaged], [true, false]);
    });

    it('when the zone is empty and one node passes of a floor of two, then it is created and the floor is not engaged', () => {
      const plan = planFor([], [node1Up, node2Down]);
      assert.deepEqual(summary(plan).creates, ['A st-api/node-1/st-api 10.0.0.1']);
      assert.deepEqual([plan.belowFloor, plan.floorEngaged, plan.keptByFloor], [true, false, []]);
    });
  });

  describe('blast radius', () => {
    it('when more records would be deleted than the cap, then the rest are deferred to a later run', () => {
      const current = Array.from({ length: 8 }, (_, i) => record(`node-${i}`));
      const instances = [
        instance('node-0', 'passing'),
        instance('node-1', 'passing'),
        ...Array.from({ length: 6 }, (_, i) => instance(`node-${i + 2}`, 'critical')),
      ];
      const plan = planFor(current, instances, { maxDeletesPerRun: 4 });
      assert.equal(plan.deletes.length, 4);
      assert.equal(plan.deferredDeletes.length, 2);
      assert.equal(plan.published.length, 4, 'deferred nodes are still in DNS after this run');
    });
  });
});
