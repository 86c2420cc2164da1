// The token-bucket rules on their own, with a clock passed in: no sleeping, exact figures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountThrottle, DOCUMENTED_LIMITS, LEGACY_LIMITS, TokenBucket, type ThrottleLimits } from './throttle.ts';

/** Admits `count` requests at one instant; returns how many got through. */
function burst(throttle: AccountThrottle, operation: string, count: number, nowMs: number): number {
  let admitted = 0;
  for (let i = 0; i < count; i += 1) if (throttle.admit(operation, 0, nowMs).admitted) admitted += 1;
  return admitted;
}

describe('Route53 throttling buckets', () => {
  it('when a bucket is drained, then it refills at its rate, never beyond its capacity', () => {
    const bucket = new TokenBucket({ capacity: 50, refillPerSecond: 10 }, 0);
    assert.equal(bucket.available(0), 50);
    bucket.take(50, 0);
    assert.equal(bucket.available(0), 0);
    assert.equal(bucket.available(250), 2.5);
    assert.equal(bucket.available(60_000), 50, 'refill tokens arriving at a full bucket are discarded');
    bucket.take(1, 60_000);
    assert.equal(bucket.available(59_000), 49, 'a clock that goes back adds nothing');
  });

  it('when one account sends the documented burst at once, then 50 pass, the 51st is throttled by the account bucket, and 10 more pass a second later', () => {
    const throttle = new AccountThrottle(DOCUMENTED_LIMITS, 0);
    assert.equal(burst(throttle, 'ListResourceRecordSets', 50, 0), 50);
    assert.deepEqual(throttle.admit('GetChange', 0, 0), { admitted: false, bucket: 'account' });
    assert.equal(burst(throttle, 'GetChange', 20, 1000), 10);
  });

  it('when one operation has its own smaller bucket (CreateHostedZone 40 / 2), then it runs dry while other operations still pass', () => {
    const throttle = new AccountThrottle(DOCUMENTED_LIMITS, 0);
    assert.equal(burst(throttle, 'CreateHostedZone', 45, 0), 40);
    assert.deepEqual(throttle.admit('CreateHostedZone', 0, 0), { admitted: false, bucket: 'operation' });
    assert.equal(burst(throttle, 'GetHostedZone', 20, 0), 10, 'the account bucket had 10 tokens left');
    assert.equal(burst(throttle, 'CreateHostedZone', 5, 1000), 2);
  });

  it('when a request is throttled by one bucket, then it takes no token from the others', () => {
    const limits: ThrottleLimits = { account: { capacity: 3, refillPerSecond: 0 }, otherOperations: { capacity: 1, refillPerSecond: 0 } };
    const throttle = new AccountThrottle(limits, 0);
    assert.equal(throttle.admit('GetChange', 0, 0).admitted, true);
    assert.deepEqual(throttle.admit('GetChange', 0, 0), { admitted: false, bucket: 'operation' });
    assert.deepEqual(throttle.admit('GetChange', 0, 0), { admitted: false, bucket: 'operation' });
    assert.equal(burst(throttle, 'ListResourceRecordSets', 5, 0), 1, 'two account tokens remain, but its own bucket holds one');
    assert.equal(burst(throttle, 'GetHostedZone', 5, 0), 1, 'and the last account token is still there');
  });

  it('when a change-throughput bucket is set, then a batch draws one token per change and is throttled, whole, when they are not there', () => {
    const throttle = new AccountThrottle({ ...DOCUMENTED_LIMITS, changes: { capacity: 1000, refillPerSecond: 100 } }, 0);
    assert.deepEqual(throttle.admit('ChangeResourceRecordSets', 800, 0), { admitted: true });
    assert.deepEqual(throttle.admit('ChangeResourceRecordSets', 300, 0), { admitted: false, bucket: 'changes' });
    assert.deepEqual(throttle.admit('ChangeResourceRecordSets', 200, 0), { admitted: true }, 'the refused 300 took nothing');
    assert.deepEqual(throttle.admit('ChangeResourceRecordSets', 100, 500), { admitted: false, bucket: 'changes' });
    assert.deepEqual(throttle.admit('ChangeResourceRecordSets', 100, 1000), { admitted: true });
    assert.deepEqual(throttle.admit('ListResourceRecordSets', 0, 1000), { admitted: true }, 'reads draw no change tokens');
  });

  it('when the legacy limit is chosen, then 5 requests pass at once and one more every 200 ms, across all operations', () => {
    const throttle = new AccountThrottle(LEGACY_LIMITS, 0);
    assert.equal(burst(throttle, 'GetChange', 10, 0), 5);
    assert.equal(burst(throttle, 'ListResourceRecordSets', 10, 200), 1);
    assert.equal(burst(throttle, 'ChangeResourceRecordSets', 10, 1200), 5);
  });
});
