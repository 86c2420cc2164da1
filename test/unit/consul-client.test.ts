// The shared Consul client (common/consul/client.ts): each call the watcher and the hooks make,
// against the Consul double, and each way a call fails, against a loopback server that answers as
// told, read through both programs' failure kinds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exitCodeOf, ProgramError, type ErrorKind } from '../../common/cli/errors.ts';
import {
  ConsulClient,
  ConsulResponseError,
  ConsulUnavailableError,
  EVERY_ANSWER_UNAVAILABLE,
  KINDS_BY_STATUS,
  type ConsulFailureKinds,
  type ServiceDefinition,
} from '../../common/consul/client.ts';
import { startConsulDouble, type ConsulDouble } from '../../doubles/consul/double.ts';
import { EXIT_BY_KIND as HOOKS_EXIT } from '../../sentinel-hooks/exit-codes.ts';
import { startScriptedHttpServer, type ScriptedHttpServer } from '../../testkit/scripted-http.ts';
import { EXIT_BY_KIND as WATCHER_EXIT } from '../../watcher/exit-codes.ts';

const REDIS_A: ServiceDefinition = {
  ID: 'redis-6379',
  Name: 'redis',
  Tags: ['master'],
  Address: '10.0.0.1',
  Port: 6379,
  Meta: { role: 'master' },
  EnableTagOverride: false,
  Check: { CheckID: 'redis-6379-role', Name: 'Redis ROLE matches tag', TTL: '30s', Status: 'passing', Notes: 'test' },
};

describe('Consul client: each call against the double', { timeout: 30_000 }, () => {
  let consul: ConsulDouble;
  let client: ConsulClient;
  before(async () => {
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    client = new ConsulClient({ address: consul.httpAddr, token: 'a-token', timeoutMs: 5000, failureKinds: KINDS_BY_STATUS });
  });
  after(async () => {
    await consul.stop();
  });

  it('when the address has no scheme, then it is http; its host:port is what messages name', () => {
    const plain = new ConsulClient({ address: '127.0.0.1:8600', token: undefined, timeoutMs: 100, failureKinds: KINDS_BY_STATUS });
    assert.equal(plain.address, '127.0.0.1:8600');
    assert.equal(
      new ConsulClient({ address: 'http://10.0.0.9', token: undefined, timeoutMs: 100, failureKinds: KINDS_BY_STATUS }).address,
      '10.0.0.9:8500',
    );
    assert.equal(
      new ConsulClient({ address: 'https://consul.local', token: undefined, timeoutMs: 100, failureKinds: KINDS_BY_STATUS }).address,
      'consul.local:443',
    );
  });

  it('when a service is registered with its TTL check, then the agent lists both and the check takes status and output', async () => {
    assert.equal(await client.agentService(REDIS_A.ID), undefined, 'no registration yet: undefined, not an error');
    await client.registerService(REDIS_A);
    const service = await client.agentService(REDIS_A.ID);
    assert.deepEqual(
      [service?.ID, service?.Service, service?.Tags, service?.Address, service?.Port, service?.Meta],
      ['redis-6379', 'redis', ['master'], '10.0.0.1', 6379, { role: 'master' }],
    );
    await client.updateTtlCheck('redis-6379-role', 'warning', 'ROLE=master, 2/3 Sentinels agree');
    const check = (await client.agentChecks())['redis-6379-role'];
    assert.deepEqual([check?.Status, check?.Output, check?.ServiceID], ['warning', 'ROLE=master, 2/3 Sentinels agree', 'redis-6379']);
  });

  it('when health is asked with a tag, then only tagged instances come back, with the X-Consul-Index', async () => {
    const tagged = await client.healthService('redis', { tag: 'master' });
    assert.deepEqual(
      tagged.value.map((entry) => [entry.Service.ID, entry.Service.Address, entry.Service.Port]),
      [['redis-6379', '10.0.0.1', 6379]],
    );
    assert.ok(tagged.value[0]?.Checks.some((check) => check.CheckID === 'redis-6379-role' && check.Status === 'warning'));
    assert.ok(tagged.index > 0);
    assert.deepEqual((await client.healthService('redis', { tag: 'replica' })).value, []);
    assert.equal((await client.healthService('redis')).value.length, 1);
    assert.deepEqual((await client.healthService('no-such-service')).value, []);
  });

  it('when a key is written by check-and-set, then cas=0 creates it once and the ModifyIndex read back guards the next write', async () => {
    const key = 'redis/sentinel/events/mymaster';
    assert.equal(await client.kvGet(key), undefined);
    assert.equal(await client.kvCas(key, '{"n":1}', 0), true);
    assert.equal(await client.kvCas(key, '{"n":"other"}', 0), false, 'cas=0 only when absent');
    const first = await client.kvGet(key);
    assert.deepEqual([first?.Key, first?.Value], [key, '{"n":1}'], 'the value comes back as text, not base64');
    assert.equal(await client.kvCas(key, '{"n":2}', first?.ModifyIndex ?? -1), true);
    assert.equal(await client.kvCas(key, '{"n":3}', first?.ModifyIndex ?? -1), false, 'a stale index loses');
    assert.equal((await client.kvGet(key))?.Value, '{"n":2}');
  });

  it('when keys are set under a prefix, then the list has them all, and a deleted key is gone', async () => {
    await client.kvSet('st-api/dns/excluded/n1', 'maintenance ✓');
    await client.kvSet('st-api/dns/excluded/n 2', '{"reason":"r"}');
    assert.deepEqual(
      (await client.kvList('st-api/dns/excluded/')).map((entry) => [entry.Key, entry.Value]),
      [
        ['st-api/dns/excluded/n 2', '{"reason":"r"}'],
        ['st-api/dns/excluded/n1', 'maintenance ✓'],
      ],
    );
    await client.kvDelete('st-api/dns/excluded/n1');
    assert.equal(await client.kvGet('st-api/dns/excluded/n1'), undefined);
    assert.deepEqual(await client.kvList('nothing/here/'), []);
  });

  it('when two sessions take a lock, then one holds it until it releases; renew works until the session is destroyed', async () => {
    const options = { ttl: '10s', behavior: 'release', lockDelay: '0s' } as const;
    const mine = await client.sessionCreate({ name: 'mine', ...options });
    const theirs = await client.sessionCreate({ name: 'theirs', ...options });
    assert.equal(await client.kvAcquire('st-api/dns/lock', '{"holder":"me"}', mine), true);
    assert.equal(await client.kvAcquire('st-api/dns/lock', '{"holder":"them"}', theirs), false);
    await client.sessionRenew(mine);
    assert.equal(await client.kvRelease('st-api/dns/lock', '', mine), true);
    assert.equal(await client.kvAcquire('st-api/dns/lock', '{"holder":"them"}', theirs), true);
    await client.sessionDestroy(mine);
    const renewed = await client.sessionRenew(mine).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(renewed instanceof ConsulResponseError, String(renewed));
    assert.equal(renewed.status, 404);
    await client.sessionDestroy(theirs);
  });

  it('when a blocking wait is given the index, then it returns once the key changes, with a later index', async () => {
    const key = 'st-api/dns/wait-me';
    const index = await client.kvWait(key);
    assert.ok(index > 0, 'without an index it answers at once, even for an absent key');
    const started = Date.now();
    const waiting = client.kvWait(key, { index, waitMs: 5000 });
    setTimeout(() => void client.kvSet(key, 'changed'), 150);
    const next = await waiting;
    assert.ok(next > index, `${next} > ${index}`);
    assert.ok(Date.now() - started < 4000, 'woken by the write, not by the wait running out');
  });

  it('when a token is configured, then every call carries it', () => {
    const calls = consul.callLog();
    assert.ok(calls.length > 10);
    assert.deepEqual([...new Set(calls.map((call) => call.token))], ['a-token']);
  });
});

describe('Consul client: failures, as each program reads them', { timeout: 30_000 }, () => {
  let http: ScriptedHttpServer;
  let address: string;
  let closed: string;
  before(async () => {
    http = await startScriptedHttpServer();
    ({ address, closed } = http);
  });
  after(() => http.close());

  const client = (kinds: ConsulFailureKinds, at = address, signal?: AbortSignal): ConsulClient =>
    new ConsulClient({ address: at, token: undefined, timeoutMs: 300, failureKinds: kinds, ...(signal === undefined ? {} : { signal }) });

  async function failure(call: () => Promise<unknown>): Promise<{ error: Error; kind: ErrorKind | undefined; text: string }> {
    try {
      await call();
    } catch (error) {
      assert.ok(error instanceof Error);
      return { error, kind: error instanceof ProgramError ? error.kind : undefined, text: `${error.name}: ${error.message}` };
    }
    assert.fail('the call succeeded');
  }

  // [what Consul answered, hooks' kind (Sentinel's exit), watcher's kind (its exit)]
  const answers: { status: number; body: string; type?: string; hooks: [ErrorKind, number]; watcher: [ErrorKind, number]; text: RegExp }[] =
    [
      {
        status: 403,
        body: 'Permission denied',
        hooks: ['config', 2],
        watcher: ['unavailable', 69],
        text: /^ConsulResponseError: GET \/v1\/agent\/checks: HTTP 403 Permission denied$/,
      },
      {
        status: 429,
        body: 'rate limit exceeded',
        hooks: ['transient', 1],
        watcher: ['unavailable', 69],
        text: /HTTP 429 rate limit exceeded$/,
      },
      {
        status: 500,
        body: 'rpc error: No cluster leader',
        hooks: ['unavailable', 1],
        watcher: ['unavailable', 69],
        text: /HTTP 500 rpc error/,
      },
      { status: 503, body: 'unavailable', hooks: ['unavailable', 1], watcher: ['unavailable', 69], text: /HTTP 503/ },
      {
        status: 200,
        body: '{"truncated',
        hooks: ['bad-input', 2],
        watcher: ['unavailable', 69],
        text: /^ConsulResponseError: GET \/v1\/agent\/checks: answer is not JSON$/,
      },
      {
        status: 200,
        body: '{"truncated',
        type: 'application/json',
        hooks: ['bad-input', 2],
        watcher: ['unavailable', 69],
        text: /answer is not JSON$/,
      },
    ];
  for (const { status, body, type, hooks, watcher, text } of answers) {
    it(`when Consul answers ${status} ${body}${type === undefined ? '' : ` (${type})`}, then the hooks read ${hooks[0]} (exit ${hooks[1]}) and the watcher ${watcher[0]} (exit ${watcher[1]})`, async () => {
      http.answer = { status, body, ...(type === undefined ? {} : { type }) };
      const byHooks = await failure(() => client(KINDS_BY_STATUS).agentChecks());
      const byWatcher = await failure(() => client(EVERY_ANSWER_UNAVAILABLE).agentChecks());
      for (const result of [byHooks, byWatcher]) {
        assert.ok(result.error instanceof ConsulResponseError, result.text);
        assert.equal(result.error.status, status);
        assert.match(result.text, text);
      }
      assert.deepEqual([byHooks.kind, exitCodeOf(byHooks.error, HOOKS_EXIT)], hooks);
      assert.deepEqual([byWatcher.kind, exitCodeOf(byWatcher.error, WATCHER_EXIT)], watcher);
    });
  }

  it('when a call expects 404 (no such key, no such registration), then it is an answer; elsewhere 404 is an error answer', async () => {
    http.answer = { status: 404, body: '' };
    assert.equal(await client(KINDS_BY_STATUS).kvGet('a/b'), undefined);
    assert.equal(await client(KINDS_BY_STATUS).agentService('x'), undefined);
    assert.deepEqual(await client(KINDS_BY_STATUS).kvList('a/'), []);
    const renew = await failure(() => client(KINDS_BY_STATUS).sessionRenew('s'));
    assert.ok(renew.error instanceof ConsulResponseError);
    assert.equal(renew.kind, 'config');
  });

  const silent: { what: string; call: () => Promise<unknown>; text: RegExp }[] = [
    {
      what: 'nothing listens',
      call: () => client(KINDS_BY_STATUS, closed).agentChecks(),
      text: /^ConsulUnavailableError: Consul agent at 127\.0\.0\.1:\d+: ECONNREFUSED on GET \/v1\/agent\/checks$/,
    },
    {
      what: 'no answer comes within the timeout',
      call: () => ((http.answer = { status: 200, body: '', hang: true }), client(KINDS_BY_STATUS).kvGet('a/b')),
      text: /^ConsulUnavailableError: Consul agent at 127\.0\.0\.1:\d+: no answer within 300 ms on GET \/v1\/kv\/a\/b$/,
    },
    {
      what: 'the run is past its deadline',
      call: () => client(KINDS_BY_STATUS, address, AbortSignal.abort()).agentChecks(),
      text: /^ConsulUnavailableError: GET \/v1\/agent\/checks: deadline reached$/,
    },
    {
      what: 'the deadline passes while waiting',
      call: () => (
        (http.answer = { status: 200, body: '', hang: true }),
        client(KINDS_BY_STATUS, address, AbortSignal.timeout(50)).agentChecks()
      ),
      text: /^ConsulUnavailableError: GET \/v1\/agent\/checks: deadline reached$/,
    },
    {
      what: 'the answer is larger than any the programs ask for',
      call: () => ((http.answer = { status: 200, body: `[${'0,'.repeat(2_100_000)}0]` }), client(KINDS_BY_STATUS).agentChecks()),
      text: /^ConsulUnavailableError: Consul agent at 127\.0\.0\.1:\d+: answer exceeds \d+ bytes on GET \/v1\/agent\/checks$/,
    },
  ];
  for (const { what, call, text } of silent) {
    it(`when ${what}, then ConsulUnavailableError, unavailable in both programs (hooks 1, watcher 69)`, async () => {
      const result = await failure(call);
      assert.ok(result.error instanceof ConsulUnavailableError, result.text);
      assert.match(result.text, text);
      assert.deepEqual([exitCodeOf(result.error, HOOKS_EXIT), exitCodeOf(result.error, WATCHER_EXIT)], [1, 69]);
    });
  }
});
