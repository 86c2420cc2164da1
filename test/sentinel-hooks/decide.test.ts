import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, sentinelView, type Role, type SentinelView } from '../../sentinel-hooks/decide.ts';

const A = '10.0.0.2:6379';
const B = '10.0.0.3:6379';
const master: Role = { kind: 'master' };
const replicaOf = (m: string, link = 'connected'): Role => ({ kind: 'replica', master: m, link });
const view = (m: string | null): SentinelView => ({ master: m, agreement: m === null ? '1/3' : '3/3' });

describe('sentinelView', () => {
  it('when two of three Sentinels agree, then that is the master', () => {
    assert.equal(sentinelView([{ sentinel: 's1', master: A }, { sentinel: 's2', master: A }, { sentinel: 's3', master: B }], 3).master, A);
  });
  it('when only one of three answers, then there is no majority even if it is unanimous among those answering', () => {
    assert.equal(sentinelView([{ sentinel: 's1', master: A }, { sentinel: 's2', master: undefined }, { sentinel: 's3', master: undefined }], 3).master, null);
  });
  it('when the votes split 1/1/1 during a failover, then there is no majority', () => {
    const v = sentinelView([{ sentinel: 's1', master: A }, { sentinel: 's2', master: B }, { sentinel: 's3', master: null }], 3);
    assert.equal(v.master, null);
    assert.equal(v.agreement, '1/3');
  });
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
  it('when ROLE=slave of the Sentinels\' master with the link up, then it is a passing replica', () => {
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
    for (const r of roles) for (const v of [view(A), view(B), view(null)]) for (const t of ['master', 'replica', null] as const) {
      const d = decide(A, r, v, t);
      if (d.tag === 'master') assert.ok(r.kind === 'master' && (v.master === A || (v.master === null && t === 'master')));
    }
  });
});
