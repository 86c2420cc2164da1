// The plan's policies at their edges (ARCHITECTURE.md, watcher/ "Policies and guards"): the cases
// where one comparison or one ordering decides what DNS holds. plan.test.ts has the everyday cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord, Health, Instance } from '../../watcher/model.ts';
import { computePlan, hasChanges, isEligible, nodeOf, setIdentifierFor, type PlanPolicy } from '../../watcher/plan/plan.ts';
import { planWithPolicies } from '../../watcher/plan/policy.ts';
import { publishable } from '../../watcher/plan/publishable.ts';
import { keys, none, planFor, policy } from './plan-fixtures.ts';

const ipv4Of = (node: string) => `10.0.0.${node.charCodeAt(node.length - 1) % 250}`;
const instance = (node: string, health: Health, ipv6?: string): Instance => ({
  node,
  serviceId: 'st-api',
  ipv4: ipv4Of(node),
  ipv6,
  health,
});
const record = (node: string, overrides: Partial<DnsRecord> = {}): DnsRecord => ({
  name: 'play.example.com.',
  type: 'A',
  setIdentifier: `st-api/${node}/st-api`,
  ttl: 30,
  values: [ipv4Of(node)],
  ...overrides,
});

describe('floor', () => {
  it('when exactly the minimum of nodes is eligible, then the floor is not engaged and a failed node leaves', () => {
    const plan = planFor(
      [record('n1'), record('n2'), record('n3')],
      [instance('n1', 'passing'), instance('n2', 'passing'), instance('n3', 'critical')],
    );
    assert.equal(plan.floorEngaged, false);
    assert.deepEqual(plan.keptByFloor, []);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n3/st-api']);
  });

  it('when more than the minimum is eligible, then every failed node leaves and none is kept', () => {
    const current = ['n1', 'n2', 'n3', 'n4', 'n5'].map((node) => record(node));
    const instances = [
      instance('n1', 'passing'),
      instance('n2', 'passing'),
      instance('n3', 'passing'),
      instance('n4', 'critical'),
      instance('n5', 'critical'),
    ];
    const plan = planFor(current, instances);
    assert.equal(plan.floorEngaged, false);
    assert.deepEqual(plan.keptByFloor, []);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n4/st-api', 'A st-api/n5/st-api']);
  });

  it('when one fewer than the minimum is eligible, then the floor is engaged and keeps one failed node', () => {
    const plan = planFor([record('n1'), record('n2')], [instance('n1', 'passing'), instance('n2', 'critical')]);
    assert.equal(plan.floorEngaged, true);
    assert.deepEqual(plan.keptByFloor, ['n2']);
    assert.deepEqual(plan.deletes, []);
  });

  it('when the floor keeps nodes, then it keeps only as many as the minimum lacks', () => {
    const current = ['n1', 'n2', 'n3', 'n4'].map((node) => record(node));
    const instances = [instance('n1', 'passing'), instance('n2', 'critical'), instance('n3', 'critical'), instance('n4', 'critical')];
    const plan = planFor(current, instances, { minHealthy: 3 });
    assert.deepEqual(plan.keptByFloor, ['n2', 'n3']);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n4/st-api']);
    assert.deepEqual(plan.published, ['n1', 'n2', 'n3']);
  });

  it('when a critical node and one that left Consul compete for the floor, then the one Consul still knows is kept', () => {
    const plan = planFor([record('n1'), record('n2')], [instance('n2', 'critical')], { minHealthy: 1 });
    assert.deepEqual(plan.keptByFloor, ['n2']);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n1/st-api']);
  });

  it('when a node in maintenance and one that left Consul compete for the floor, then the one in maintenance is kept', () => {
    const plan = planFor([record('n1'), record('n2')], [instance('n2', 'maintenance')], { minHealthy: 1 });
    assert.deepEqual(plan.keptByFloor, ['n2']);
  });

  it('when a warning node and a critical one compete for the floor, then the warning node is kept whatever the order', () => {
    const strict = { ...policy, minHealthy: 1, warningIsHealthy: false };
    for (const [warning, critical] of [
      ['n1', 'n2'],
      ['n2', 'n1'],
    ] as const) {
      const plan = planFor([record('n1'), record('n2')], [instance(critical, 'critical'), instance(warning, 'warning')], strict);
      assert.deepEqual(plan.keptByFloor, [warning]);
    }
  });

  it('when equally credible nodes compete for the floor, then the first by name is kept whatever order they come in', () => {
    const one = { ...policy, minHealthy: 1 };
    const plan = planFor([record('n2'), record('n1')], [instance('n2', 'critical'), instance('n1', 'maintenance')], one);
    assert.deepEqual(plan.keptByFloor, ['n1']);
    const reversed = planFor([record('n1'), record('n2')], [instance('n1', 'critical'), instance('n2', 'maintenance')], one);
    assert.deepEqual(reversed.keptByFloor, ['n1']);
  });

  it('when the floor keeps several nodes, then they are listed by name, not by credibility', () => {
    const strict = { ...policy, warningIsHealthy: false };
    const plan = planFor([record('n1'), record('n2')], [instance('n1', 'critical'), instance('n2', 'warning')], strict);
    assert.deepEqual(plan.keptByFloor, ['n1', 'n2']);
  });

  it('when the floor keeps a dual-stack node, then both its A and AAAA records stay exactly as they are', () => {
    const current = [record('n1', { ttl: 300 }), record('n1', { type: 'AAAA', values: ['2001:db8::1'] })];
    const plan = planFor(current, [instance('n1', 'critical', '2001:db8::1')], { minHealthy: 1 });
    assert.deepEqual(plan.keptByFloor, ['n1']);
    assert.equal(hasChanges(plan), false, 'a kept record is neither deleted nor rewritten (not even its TTL)');
  });

  it('when a node is excluded below the floor, then it is not counted and never kept, and with nothing kept the floor is not engaged', () => {
    const plan = planWithPolicies({
      current: [record('n1'), record('n2')],
      instances: [instance('n1', 'passing'), instance('n2', 'passing')],
      excluded: new Set(['n2']),
      policy,
    });
    assert.equal(plan.belowFloor, true);
    assert.equal(plan.floorEngaged, false);
    assert.deepEqual(plan.keptByFloor, []);
    assert.deepEqual(keys(plan.deletes), ['A st-api/n2/st-api']);
    assert.deepEqual(plan.eligible, ['n1']);
  });
});

describe('blast radius', () => {
  const failed = (count: number) => {
    const nodes = Array.from({ length: count }, (_, i) => `n${i + 1}`);
    // Listed in reverse so that any order the plan keeps comes from the plan.
    return {
      current: nodes.map((node) => record(node)).reverse(),
      instances: [instance('up1', 'passing'), instance('up2', 'passing'), ...nodes.map((node) => instance(node, 'critical'))],
    };
  };

  it('when exactly the cap of records must go, then all are deleted and none deferred', () => {
    const plan = planWithPolicies({ ...failed(3), excluded: none, policy: { ...policy, maxDeletesPerRun: 3 } });
    assert.deepEqual(keys(plan.deletes), ['A st-api/n1/st-api', 'A st-api/n2/st-api', 'A st-api/n3/st-api']);
    assert.deepEqual(plan.deferredDeletes, []);
  });

  it('when more must go than the cap, then the first by record key go now and the rest next run, and stay published meanwhile', () => {
    const plan = planWithPolicies({ ...failed(3), excluded: none, policy: { ...policy, maxDeletesPerRun: 1 } });
    assert.deepEqual(keys(plan.deletes), ['A st-api/n1/st-api']);
    assert.deepEqual(keys(plan.deferredDeletes), ['A st-api/n2/st-api', 'A st-api/n3/st-api']);
    assert.deepEqual(plan.published, ['n2', 'n3', 'up1', 'up2']);
  });

  it('when the cap is zero or negative, then nothing is deleted', () => {
    for (const maxDeletesPerRun of [0, -1]) {
      const plan = planWithPolicies({ ...failed(3), excluded: none, policy: { ...policy, maxDeletesPerRun } });
      assert.deepEqual(plan.deletes, [], `maxDeletesPerRun ${maxDeletesPerRun}`);
      assert.equal(plan.deferredDeletes.length, 3);
      assert.equal(hasChanges(plan), true, 'the two healthy nodes are still created');
    }
  });
});

describe('the plan as the watcher reads it', () => {
  it('when instances come in any order, then creates, published and eligible come sorted, so runs on several agents agree', () => {
    const plan = computePlan({
      current: [],
      instances: [instance('n3', 'passing', '2001:db8::3'), instance('n1', 'passing'), instance('n2', 'passing')],
      excluded: none,
      policy,
    });
    assert.deepEqual(keys(plan.creates), ['A st-api/n1/st-api', 'A st-api/n2/st-api', 'A st-api/n3/st-api', 'AAAA st-api/n3/st-api']);
    assert.deepEqual(plan.published, ['n1', 'n2', 'n3']);
    assert.deepEqual(plan.eligible, ['n1', 'n2', 'n3']);
  });

  it('when several records are upserted, then they come sorted too', () => {
    const plan = computePlan({
      current: [record('n2', { ttl: 60 }), record('n1', { ttl: 60 })],
      instances: [instance('n2', 'passing'), instance('n1', 'passing')],
      excluded: none,
      policy,
    });
    assert.deepEqual(keys(plan.upserts), ['A st-api/n1/st-api', 'A st-api/n2/st-api']);
  });

  it('when a record is created, then it carries the policy TTL, the fully qualified lowercase name and the node address', () => {
    const plan = computePlan({
      current: [],
      instances: [instance('n1', 'passing'), instance('n2', 'passing')],
      excluded: none,
      policy: { ...policy, recordName: 'Play.Example.COM', ttl: 15 },
    });
    assert.deepEqual(plan.creates[0], {
      name: 'play.example.com.',
      type: 'A',
      setIdentifier: 'st-api/n1/st-api',
      ttl: 15,
      values: [ipv4Of('n1')],
    });
  });

  it('when only deletes are deferred, then there is nothing to apply this run; any create, upsert or delete is', () => {
    const current = [record('up1'), record('up2'), record('n1')];
    const deferredOnly = planFor(current, [instance('up1', 'passing'), instance('up2', 'passing'), instance('n1', 'critical')], {
      maxDeletesPerRun: 0,
    });
    assert.equal(deferredOnly.deferredDeletes.length, 1);
    assert.equal(hasChanges(deferredOnly), false);
    assert.equal(hasChanges({ ...deferredOnly, creates: [record('n2')] }), true);
    assert.equal(hasChanges({ ...deferredOnly, upserts: [record('n2')] }), true);
    assert.equal(hasChanges({ ...deferredOnly, deletes: [record('n2')] }), true);
  });
});

describe('health', () => {
  it('when a node passes, then it is in unless excluded', () => {
    assert.equal(isEligible(instance('n1', 'passing'), none, false), true);
    assert.equal(isEligible(instance('n1', 'passing'), new Set(['n1']), true), false);
  });

  it('when a node warns, then it is in only where warnings count as healthy', () => {
    assert.equal(isEligible(instance('n1', 'warning'), none, true), true);
    assert.equal(isEligible(instance('n1', 'warning'), none, false), false);
  });

  it('when a node is critical or in maintenance, then it is out even where warnings count as healthy', () => {
    assert.equal(isEligible(instance('n1', 'critical'), none, true), false);
    assert.equal(isEligible(instance('n1', 'maintenance'), none, true), false);
  });
});

describe('what may be published', () => {
  const skippedOf = (instances: Instance[], extra: Partial<PlanPolicy> = {}) =>
    computePlan({ current: [], instances, excluded: none, policy: { ...policy, ...extra } }).skipped.map((s) => `${s.node}: ${s.reason}`);
  const at = (node: string, ipv4: string | undefined, ipv6?: string): Instance => ({
    node,
    serviceId: 'st-api',
    ipv4,
    ipv6,
    health: 'passing',
  });

  it('when the SetIdentifier is exactly 128 characters, then it is published; at 129 it is skipped', () => {
    // "st-api/" + node + "/st-api": 14 characters around the node name.
    const fits = 'a'.repeat(114);
    const tooLong = 'b'.repeat(115);
    const plan = computePlan({ current: [], instances: [at(fits, '10.0.0.1'), at(tooLong, '10.0.0.2')], excluded: none, policy });
    assert.deepEqual(keys(plan.creates), [`A st-api/${fits}/st-api`]);
    assert.equal(plan.creates[0]?.setIdentifier.length, 128);
    assert.deepEqual(
      plan.skipped.map((s) => s.node),
      [tooLong],
    );
  });

  it('when a name holds characters outside [A-Za-z0-9._-], then they are percent-encoded in upper case, as earlier versions wrote them', () => {
    assert.equal(setIdentifierFor('st-api', { node: 'a*b~c', serviceId: 'st-api' }), 'st-api/a%2Ab%7Ec/st-api');
    assert.equal(setIdentifierFor('st-api', { node: 'Zürich', serviceId: 'x y' }), 'st-api/Z%C3%BCrich/x%20y');
  });

  it('when a record written by hand has a SetIdentifier that is not valid percent-encoding, then its node reads as the raw text', () => {
    assert.equal(nodeOf('st-api', { setIdentifier: 'st-api/bad%zz/st-api' }), 'bad%zz');
    assert.equal(nodeOf('st-api', { setIdentifier: 'st-api/Z%C3%BCrich/st-api' }), 'Zürich');
  });

  it('when Consul gives a host name instead of an address, then it is skipped with the reason', () => {
    assert.deepEqual(skippedOf([at('n1', 'node1.internal')]), ['n1: A node1.internal: not an IP address']);
  });

  it('when only one family is unusable, then the node keeps the other', () => {
    const plan = computePlan({
      current: [],
      instances: [at('n1', '127.0.0.1', '2001:db8::1'), at('n2', '10.0.0.2', '::1')],
      excluded: none,
      policy,
    });
    assert.deepEqual(keys(plan.creates), ['A st-api/n2/st-api', 'AAAA st-api/n1/st-api']);
    assert.deepEqual(
      plan.skipped.map((s) => `${s.node}: ${s.reason}`),
      ['n1: A 127.0.0.1: loopback', 'n2: AAAA ::1: loopback'],
    );
  });

  it('when both addresses are unusable, then each is named once and the node is not also called address-less', () => {
    assert.deepEqual(skippedOf([at('n1', '0.0.0.0', 'fe80::1')]), ['n1: A 0.0.0.0: unspecified', 'n1: AAAA fe80::1: link-local']);
  });

  it('when publishLoopback is set, then IPv6 loopback is published too, and link-local still is not', () => {
    const plan = computePlan({
      current: [],
      instances: [at('n1', undefined, '::1'), at('n2', '169.254.0.9')],
      excluded: none,
      policy: { ...policy, publishLoopback: true },
    });
    assert.deepEqual(keys(plan.creates), ['AAAA st-api/n1/st-api']);
    assert.deepEqual(
      plan.skipped.map((s) => s.reason),
      ['A 169.254.0.9: link-local'],
    );
  });

  it('when instances are filtered, then exactly the usable ones come back, each with only its usable addresses', () => {
    assert.deepEqual(publishable([], policy), { instances: [], skipped: [] });
    const { instances } = publishable([at('n1', '127.0.0.1', '2001:db8::1'), at('n2', '0.0.0.0'), at('n3', '10.0.0.3')], policy);
    assert.deepEqual(instances, [at('n1', undefined, '2001:db8::1'), at('n3', '10.0.0.3')]);
  });

  it('when addresses sit just outside the refused ranges, then they are published', () => {
    const edges = [
      '1.0.0.1',
      '126.255.255.255',
      '128.0.0.1',
      '169.253.255.255',
      '169.255.0.1',
      '223.255.255.255',
      '255.255.255.254',
      'fec0::1',
      'fe7f::1',
      '::2',
    ];
    const instances = edges.map((address, i) => (address.includes(':') ? at(`e${i}`, undefined, address) : at(`e${i}`, address)));
    assert.deepEqual(skippedOf(instances), []);
  });
});
