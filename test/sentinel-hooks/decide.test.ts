import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, describeRole, sentinelView, type Decision, type Role, type SentinelView } from '../../sentinel-hooks/decide.ts';

const A = '10.0.0.2:6379';
const B = '10.0.0.3:6379';
const C = '10.0.0.9:6379';
const master: Role = { kind: 'master' };
const replicaOf = (m: string, link = 'connected'): Role => ({ kind: 'replica', master: m, link });
const view = (m: string | null): SentinelView => ({ master: m, agreement: m === null ? '1/3' : '3/3' });

/** Three configured Sentinels answering, in order: an address, null (no master known) or undefined (no answer). */
const votes = (...masters: (string | null | undefined)[]) =>
  sentinelView(
    masters.map((m, i) => ({ sentinel: `s${i + 1}`, master: m })),
    3,
  );

describe('sentinelView', () => {
  it('when two of three Sentinels agree, then that is the master', () => {
    assert.equal(votes(A, A, B).master, A);
  });
  it('when only one of three answers, then there is no majority even if it is unanimous among those answering', () => {
    assert.equal(votes(A, undefined, undefined).master, null);
  });
  it('when the votes split 1/1/1 during a failover, then there is no majority', () => {
    assert.deepEqual(votes(A, B, null), { master: null, agreement: '1/3' });
  });
  it('when the first Sentinel to answer is in the minority, then the majority still names the master', () => {
    assert.deepEqual(votes(B, A, A), { master: A, agreement: '2/3' });
  });
  it('when no Sentinel answers, then there is no master and the agreement reads 0/3', () => {
    const silent = [
      { sentinel: 's1', master: undefined, error: 'ECONNREFUSED' },
      { sentinel: 's2', master: null },
    ];
    assert.deepEqual(sentinelView(silent, 3), { master: null, agreement: '0/3' });
  });
});

describe('describeRole', () => {
  it('when the hooks explain a demotion or a decision, then each ROLE reads as redis-cli shows it', () => {
    assert.equal(describeRole(master), 'ROLE=master');
    assert.equal(describeRole(replicaOf(A, 'connect')), `ROLE=slave (master ${A}, link connect)`);
    assert.equal(describeRole({ kind: 'other', role: 'sentinel' }), 'ROLE=sentinel');
    assert.equal(describeRole({ kind: 'unreachable', error: 'WRONGPASS' }), 'ROLE unreachable (WRONGPASS)');
  });
});

// Every rule as the check shows it: tag, the meta role on-call engineers read first, the check
// status, and the check's output in words (what the Consul UI shows).
describe('decide, rule by rule', () => {
  const rows: {
    name: string;
    instance: string;
    role: Role;
    view: SentinelView;
    current: 'master' | 'replica' | null;
    expected: Decision;
  }[] = [
    {
      name: 'ROLE=master named by the majority',
      instance: A,
      role: master,
      view: view(A),
      current: 'replica',
      expected: {
        tag: 'master',
        metaRole: 'master',
        status: 'passing',
        output: `tag=master, ROLE=master; Sentinels (3/3): master is ${A}`,
        misconfigured: false,
      },
    },
    {
      name: 'the master while the Sentinels have no majority',
      instance: A,
      role: master,
      view: view(null),
      current: 'master',
      expected: {
        tag: 'master',
        metaRole: 'master',
        status: 'warning',
        output: 'tag=master, ROLE=master, but no Sentinel majority (1/3): not confirmed',
        misconfigured: false,
      },
    },
    {
      name: 'a deposed master still saying ROLE=master',
      instance: A,
      role: master,
      view: view(B),
      current: 'master',
      expected: {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ROLE=master; Sentinels (3/3): master is ${B}`,
        misconfigured: false,
      },
    },
    {
      name: 'ROLE=master, never tagged, no majority',
      instance: A,
      role: master,
      view: view(null),
      current: null,
      expected: {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: 'tag=replica but ROLE=master; no Sentinel majority (1/3)',
        misconfigured: false,
      },
    },
    {
      name: 'an unreachable instance',
      instance: A,
      role: { kind: 'unreachable', error: 'ECONNREFUSED' },
      view: view(A),
      current: 'master',
      expected: {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ROLE unreachable (ECONNREFUSED); Sentinels (3/3): master is ${A}`,
        misconfigured: false,
      },
    },
    {
      name: 'a Sentinel configured as a data instance',
      instance: A,
      role: { kind: 'other', role: 'sentinel' },
      view: view(A),
      current: null,
      expected: {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ROLE=sentinel: ${A} is not a Redis data instance, fix the configuration`,
        misconfigured: true,
      },
    },
    {
      name: "a replica of the majority's master, in sync",
      instance: B,
      role: replicaOf(A),
      view: view(A),
      current: 'replica',
      expected: {
        tag: 'replica',
        metaRole: 'replica',
        status: 'passing',
        output: `tag=replica, ROLE=slave (master ${A}, link connected); Sentinels (3/3): master is ${A}`,
        misconfigured: false,
      },
    },
    {
      name: 'a replica in sync while the Sentinels have no majority (it stays in DNS)',
      instance: B,
      role: replicaOf(A),
      view: view(null),
      current: 'replica',
      expected: {
        tag: 'replica',
        metaRole: 'replica',
        status: 'passing',
        output: `tag=replica, ROLE=slave (master ${A}, link connected); no Sentinel majority (1/3)`,
        misconfigured: false,
      },
    },
    {
      name: 'a replica of another master',
      instance: B,
      role: replicaOf(C),
      view: view(A),
      current: 'replica',
      expected: {
        tag: 'replica',
        metaRole: 'replica',
        status: 'warning',
        output: `tag=replica, ROLE=slave (master ${C}, link connected), but Sentinels (3/3): master is ${A}`,
        misconfigured: false,
      },
    },
    {
      name: 'a replica still syncing',
      instance: B,
      role: replicaOf(A, 'sync'),
      view: view(A),
      current: 'replica',
      expected: {
        tag: 'replica',
        metaRole: 'replica',
        status: 'warning',
        output: `tag=replica, ROLE=slave (master ${A}, link sync): not in sync; Sentinels (3/3): master is ${A}`,
        misconfigured: false,
      },
    },
  ];
  for (const row of rows) {
    it(`when ${row.name}, then the check says so`, () => {
      assert.deepEqual(decide(row.instance, row.role, row.view, row.current), row.expected);
    });
  }
});

describe('decide', () => {
  it('when ROLE=master and the Sentinel majority names the instance, then it is tagged master and passing', () => {
    const d = decide(A, master, view(A), 'replica');
    assert.deepEqual([d.tag, d.status], ['master', 'passing']);
  });
  it('when ROLE=master but the Sentinels name another instance (deposed, still writable), then it is tagged replica and critical', () => {
    const d = decide(A, master, view(B), 'master');
    assert.deepEqual([d.tag, d.metaRole, d.status], ['replica', 'failing', 'critical']);
    assert.match(d.output, /^tag=replica but ROLE=master; Sentinels \(3\/3\): master is 10\.0\.0\.3:6379/);
  });
  it('when ROLE=master without a Sentinel majority, then an unregistered or replica instance is never promoted', () => {
    assert.equal(decide(A, master, view(null), null).tag, 'replica');
    assert.equal(decide(A, master, view(null), 'replica').status, 'critical');
  });
  it('when ROLE=master without a Sentinel majority but it is already the master, then it keeps the tag with a warning (stays in DNS)', () => {
    const d = decide(A, master, view(null), 'master');
    assert.deepEqual([d.tag, d.status], ['master', 'warning']);
  });
  it('when the instance is unreachable, then it is tagged replica and critical whatever the Sentinels say', () => {
    for (const v of [view(A), view(B), view(null)]) {
      const d = decide(A, { kind: 'unreachable', error: 'ECONNREFUSED' }, v, 'master');
      assert.deepEqual([d.tag, d.metaRole, d.status], ['replica', 'failing', 'critical']);
    }
  });
  it("when ROLE=slave of the Sentinels' master with the link up, then it is a passing replica", () => {
    const d = decide(B, replicaOf(A), view(A), 'master');
    assert.deepEqual([d.tag, d.status], ['replica', 'passing']);
    assert.equal(d.output, 'tag=replica, ROLE=slave (master 10.0.0.2:6379, link connected); Sentinels (3/3): master is 10.0.0.2:6379');
  });
  it('when ROLE=slave but the Sentinels name the instance itself as master, then it is not tagged master', () => {
    assert.equal(decide(B, replicaOf(A), view(B), 'master').tag, 'replica');
  });
  it('when ROLE=slave of another master or still syncing, then it stays a replica with a warning', () => {
    assert.equal(decide(B, replicaOf('10.0.0.9:6379'), view(A), 'replica').status, 'warning');
    assert.equal(decide(B, replicaOf(A, 'sync'), view(A), 'replica').status, 'warning');
  });
  it('when ROLE says sentinel, then the configuration is flagged and the instance kept out of DNS', () => {
    const d = decide(A, { kind: 'other', role: 'sentinel' }, view(A), null);
    assert.deepEqual([d.tag, d.status, d.misconfigured], ['replica', 'critical', true]);
  });
  it('when any inputs are combined, then at most the instance the majority names can be master', () => {
    const roles: Role[] = [master, replicaOf(A), replicaOf(B), { kind: 'unreachable', error: 'x' }];
    for (const r of roles)
      for (const v of [view(A), view(B), view(null)])
        for (const t of ['master', 'replica', null] as const) {
          const d = decide(A, r, v, t);
          if (d.tag === 'master') assert.ok(r.kind === 'master' && (v.master === A || (v.master === null && t === 'master')));
        }
  });
});
