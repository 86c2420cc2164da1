// The samplers the failover tests measure with (system.ts): a state never reached is an error,
// not a quiet end of sampling, and a stretch still open when sampling ends is not 0 ms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { longestStretch, sampleUntil } from './system.ts';

describe('sampleUntil', () => {
  it('when the awaited state is reached, then the samples end on it', async () => {
    let n = 0;
    const samples = await sampleUntil(
      () => Promise.resolve(++n),
      (value) => value === 3,
      { intervalMs: 1, timeoutMs: 10_000, what: 'three' },
    );
    assert.deepEqual(
      samples.map((s) => s.value),
      [1, 2, 3],
    );
  });

  it('when the awaited state never comes, then it throws after its bound, naming what was awaited', async () => {
    await assert.rejects(
      sampleUntil(
        () => Promise.resolve('two masters'),
        () => false,
        { intervalMs: 10, timeoutMs: 100, what: 'one master' },
      ),
      /one master not seen within 100 ms .*"two masters"/,
    );
  });
});

describe('longestStretch', () => {
  const at = (ms: number, bad: boolean) => ({ at: ms, value: bad });
  it('when a stretch closes, then it lasts from its first bad sample to the first good one after it', () => {
    assert.equal(
      longestStretch([at(0, false), at(100, true), at(150, true), at(400, false), at(500, true), at(550, false)], (v) => v),
      300,
    );
  });
  it('when a stretch is still open at the last sample, then it counts up to that sample, not as 0 ms', () => {
    assert.equal(
      longestStretch([at(0, false), at(100, true), at(2600, true)], (v) => v),
      2500,
    );
  });
  it('when nothing is bad, then 0', () => {
    assert.equal(
      longestStretch([at(0, false), at(100, false)], (v) => v),
      0,
    );
  });
});
