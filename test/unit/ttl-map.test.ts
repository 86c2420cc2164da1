// TtlMap (common/ttl-map.ts): the in-process cache behind verified tokens, local catalog entries and grants.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlMap } from '../../common/ttl-map.ts';

describe('TtlMap', () => {
  it('when an entry reaches its ttl, then it is gone: served while now < set time + ttl', () => {
    let clock = 5_000;
    const map = new TtlMap<string, string>({ maxEntries: 10, now: () => clock });
    map.set('token', 'viewer', 1000);
    clock += 999;
    assert.equal(map.get('token'), 'viewer');
    clock += 1;
    assert.equal(map.get('token'), undefined);
  });

  it('when it is full, then the least recently used entry makes room and the size stays at the bound', () => {
    const map = new TtlMap<string, number>({ maxEntries: 3, now: () => 0 });
    map.set('a', 1, 60_000);
    map.set('b', 2, 60_000);
    map.set('c', 3, 60_000);
    assert.equal(map.get('a'), 1); // a is now more recent than b
    map.set('d', 4, 60_000);
    assert.equal(map.size, 3);
    assert.equal(map.get('b'), undefined);
    assert.deepEqual([map.get('a'), map.get('c'), map.get('d')], [1, 3, 4]);
  });
});
