import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArgumentError, eventMasterName, parseClientReconfigArgs, parseNotificationArgs } from '../../sentinel-hooks/args.ts';
import { ConsulClient, KINDS_BY_STATUS } from '../../common/consul/client.ts';
import { addEvent, emptyRing, parseRing, recordEvent } from '../../sentinel-hooks/events.ts';
import { startConsulDouble } from '../../doubles/consul/double.ts';

/** Characters that would rewrite what a reader sees: RLO (reads backwards), LINE SEPARATOR, NEL, a C1 control. */
const UNSAFE_SHOWN = /[\u202e\u2028\u0085\u009b]/;

const good = ['mymaster', 'leader', 'start', '10.0.0.2', '6379', '10.0.0.3', '6379'];
const withArg = (i: number, value: string): string[] => good.map((a, j) => (j === i ? value : a));

describe('parseClientReconfigArgs', () => {
  it('when Sentinel passes its seven arguments, then they are parsed', () => {
    assert.deepEqual(parseClientReconfigArgs(good), {
      masterName: 'mymaster',
      role: 'leader',
      state: 'start',
      from: { ip: '10.0.0.2', port: 6379 },
      to: { ip: '10.0.0.3', port: 6379 },
    });
  });
  it('when arguments are missing or extra, then it is refused', () => {
    assert.throws(() => parseClientReconfigArgs(good.slice(0, 6)), ArgumentError);
    assert.throws(() => parseClientReconfigArgs([...good, 'x']), ArgumentError);
    assert.throws(() => parseClientReconfigArgs([]), ArgumentError);
  });
  it('when a port is not a number in 1-65535, then it is refused', () => {
    for (const bad of ['63x79', '', '0', '65536', '-1', '6379.0', ' 6379'])
      assert.throws(() => parseClientReconfigArgs(withArg(4, bad)), ArgumentError, bad);
  });
  it('when an address is a hostname or garbage, then it is refused', () => {
    for (const bad of ['redis-a', '10.0.0', '10.0.0.256', ''])
      assert.throws(() => parseClientReconfigArgs(withArg(5, bad)), ArgumentError, bad);
  });
  it('when the role is neither leader nor observer, then it is refused; any state word is accepted', () => {
    assert.throws(() => parseClientReconfigArgs(withArg(1, 'boss')), ArgumentError);
    assert.equal(parseClientReconfigArgs(withArg(2, 'failover')).state, 'failover');
    assert.throws(() => parseClientReconfigArgs(withArg(2, 'st art')), ArgumentError);
  });
  it('when a refused argument holds bidi or separator characters, then the error shows them escaped, not raw', () => {
    const hostile = 'my\u202eretsam\u2028+switch-master\u0085';
    const error = (() => {
      try {
        parseClientReconfigArgs(withArg(0, hostile));
      } catch (caught) {
        return caught as Error;
      }
      throw new Error('accepted a hostile master name');
    })();
    assert.ok(error instanceof ArgumentError);
    assert.doesNotMatch(error.message, UNSAFE_SHOWN);
    assert.match(error.message, /my\\u202eretsam\\u2028\+switch-master\\u0085/);
  });
  it('when from and to are the same instance or the name has spaces, then it is refused', () => {
    assert.throws(() => parseClientReconfigArgs(withArg(5, '10.0.0.2')), ArgumentError);
    assert.throws(() => parseClientReconfigArgs(withArg(0, 'my master')), ArgumentError);
  });
});

describe('notification arguments and the event ring', () => {
  it('when an event type is not +word or -word, then it is refused', () => {
    assert.deepEqual(parseNotificationArgs(['-sdown', 'master mymaster 10.0.0.2 6379']), {
      eventType: '-sdown',
      description: 'master mymaster 10.0.0.2 6379',
    });
    assert.throws(() => parseNotificationArgs(['sdown', 'x']), ArgumentError);
    assert.throws(() => parseNotificationArgs(['+sdown']), ArgumentError);
    assert.throws(() => parseNotificationArgs(['+sdown', 'a\nb']), ArgumentError);
  });
  it('when a description names an instance of a master, then the master name is found', () => {
    assert.equal(eventMasterName('slave 10.0.0.3:6379 10.0.0.3 6379 @ mymaster 10.0.0.2 6379'), 'mymaster');
    assert.equal(eventMasterName('master mymaster 10.0.0.2 6379 #quorum 2/2'), 'mymaster');
    assert.equal(eventMasterName('7'), null);
  });
  it('when three Sentinels report the same event, then it is kept once with three reporters', () => {
    const time = new Date('2026-01-01T00:00:00Z');
    let ring = emptyRing('mymaster');
    for (const reporter of ['a', 'b', 'c', 'a'])
      ring = addEvent(ring, { time, type: '+switch-master', description: 'mymaster 1 2 3 4', reporter }, 10);
    assert.equal(ring.events.length, 1);
    assert.deepEqual(ring.events[0]?.reportedBy, ['a', 'b', 'c']);
    assert.equal(ring.last?.type, '+switch-master');
  });
  it('when more events arrive than are kept, then the ring keeps the newest and counts all', () => {
    let ring = emptyRing('mymaster');
    for (let i = 0; i < 30; i++)
      ring = addEvent(ring, { time: new Date(1_800_000_000_000 + i * 60_000), type: '+sdown', description: `e${i}`, reporter: 'a' }, 5);
    assert.deepEqual(
      ring.events.map((e) => e.description),
      ['e29', 'e28', 'e27', 'e26', 'e25'],
    );
    assert.equal(ring.count, 30);
  });
  it('when a description holds bidi or separator characters, then the KV value shows them escaped and still reads back exactly', async () => {
    const consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    try {
      const agent = new ConsulClient({
        address: consul.httpAddr,
        token: undefined,
        timeoutMs: 5000,
        signal: AbortSignal.timeout(30_000),
        failureKinds: KINDS_BY_STATUS,
      });
      const description = 'master mymaster 10.0.0.2 6379 \u202e2/2 mroq#\u2028\u009b';
      assert.deepEqual(parseNotificationArgs(['+sdown', description]).description, description);
      await recordEvent(
        agent,
        'redis/sentinel/events/mymaster',
        'mymaster',
        { time: new Date(), type: '+sdown', description, reporter: 'sentinel-1' },
        10,
      );
      const raw = await (await fetch(`${consul.httpAddr}/v1/kv/redis/sentinel/events/mymaster?raw`)).text();
      assert.doesNotMatch(raw, UNSAFE_SHOWN, 'the Consul UI would show the raw characters');
      assert.equal(parseRing(raw, 'mymaster').last?.description, description);
    } finally {
      await consul.stop();
    }
  });
  it('when the stored value is not a ring, then recording starts over instead of failing forever', () => {
    assert.deepEqual(parseRing('{"oops":1}', 'm'), emptyRing('m'));
    assert.deepEqual(parseRing('not json', 'm'), emptyRing('m'));
  });
});
