import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord } from '../../watcher/model.ts';
import { toBatches, type Change } from '../../watcher/provider/batches.ts';

const record = (i: number): DnsRecord => ({
  name: 'play.example.com.',
  type: 'A',
  setIdentifier: `st-api/n${i}/st-api`,
  ttl: 30,
  values: [`10.0.${Math.floor(i / 250)}.${i % 250}`],
});
const changes = (action: Change['action'], count: number, offset = 0): Change[] =>
  Array.from({ length: count }, (_, i) => ({ action, record: record(i + offset) }));

describe('toBatches', () => {
  it('when 100 changes fit one request, then there is one batch', () => {
    assert.equal(toBatches(changes('CREATE', 100)).length, 1);
  });
  it('when 1000 single-value CREATEs are due, then they fill exactly one request; 1001 need two', () => {
    assert.equal(toBatches(changes('CREATE', 1000)).length, 1);
    assert.equal(toBatches(changes('CREATE', 1001)).length, 2);
  });
  it('when UPSERTs are due, then each counts twice against the 1000-record limit', () => {
    const batches = toBatches(changes('UPSERT', 600));
    assert.deepEqual(
      batches.map((batch) => batch.length),
      [500, 100],
    );
  });
  it('when values are long, then the 32,000-character limit splits the batch', () => {
    const long: Change[] = Array.from({ length: 900 }, (_, i) => ({
      action: 'CREATE',
      record: { ...record(i), type: 'AAAA', values: [`2001:0db8:0000:0000:0000:0000:0000:${i.toString(16).padStart(4, '0')}`] },
    }));
    const batches = toBatches(long);
    assert.ok(batches.length === 2, `${batches.length} batches`);
    for (const batch of batches) assert.ok(batch.reduce((sum, c) => sum + (c.record.values[0]?.length ?? 0), 0) <= 32_000);
  });
  it('when creates and deletes split across requests, then additions go first', () => {
    const batches = toBatches([...changes('DELETE', 600), ...changes('CREATE', 600, 1000)]);
    assert.equal(batches.length, 2);
    assert.equal(batches[0]?.filter((change) => change.action === 'CREATE').length, 600, 'every create lands in the first request');
    assert.equal(
      batches[1]?.every((change) => change.action === 'DELETE'),
      true,
    );
  });
});
