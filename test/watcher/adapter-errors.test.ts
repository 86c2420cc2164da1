// The watcher's adapters translate their libraries' failures at the boundary: Route53's SDK errors
// and Consul's client errors leave the adapter as ProgramErrors whose kind the CLI turns into an exit
// code (README "Exit codes"); what the watcher does not expect stays untranslated, a bug (70). Each
// case is a real client against a loopback server that answers as AWS or Consul would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Route53Client } from '@aws-sdk/client-route-53';
import { exitCodeOf, ProgramError, type ErrorKind } from '../../common/cli/errors.ts';
import { EXIT_BY_KIND } from '../../watcher/exit-codes.ts';
import { ChangeRejectedError, Route53Provider } from '../../watcher/provider/route53.ts';
import { ConsulHealthSource } from '../../watcher/source/consul-health.ts';
import { ConsulState, KvValueError, type RunStatus } from '../../watcher/state/consul-state.ts';
import { startScriptedHttpServer, type ScriptedHttpServer } from '../../testkit/scripted-http.ts';

let http: ScriptedHttpServer;
let base: string;
/** A port nothing listens on. */
let closed: string;

/** Route53 errors are XML, Consul's answers JSON. */
function answerWith(answer: { status: number; body: string; hang?: true }): void {
  http.answer = { ...answer, type: answer.body.startsWith('<') ? 'text/xml' : 'application/json' };
}

before(async () => {
  http = await startScriptedHttpServer();
  base = `http://${http.address}`;
  closed = http.closed;
});

after(() => http.close());

/** What a failed call became: its kind (undefined when untranslated), its `name: message`, the exit code. */
async function failure(call: () => Promise<unknown>): Promise<{ kind: ErrorKind | undefined; text: string; code: number; error: unknown }> {
  try {
    await call();
  } catch (error) {
    return {
      kind: error instanceof ProgramError ? error.kind : undefined,
      text: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      code: exitCodeOf(error, EXIT_BY_KIND),
      error,
    };
  }
  assert.fail('the call succeeded');
}

describe('Route53: SDK errors by name and HTTP status', { timeout: 30_000 }, () => {
  const xmlError = (code: string, message: string): string =>
    `<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
  const provider = (options: { endpoint?: string; requestTimeout?: number; credentials?: () => Promise<never> } = {}): Route53Provider =>
    new Route53Provider(
      { zoneId: 'Z1', recordName: 'play.example.com', ownerId: 'st-api', maxAttempts: 1 },
      new Route53Client({
        region: 'us-east-1',
        endpoint: options.endpoint ?? base,
        maxAttempts: 1,
        credentials: options.credentials ?? { accessKeyId: 'AKIDTEST', secretAccessKey: 'not-a-secret' },
        ...(options.requestTimeout === undefined
          ? {}
          : { requestHandler: { requestTimeout: options.requestTimeout, throwOnRequestTimeout: true } }),
      }),
    );

  const cases: { status: number; code: string; kind: ErrorKind | undefined; exit: number }[] = [
    { status: 400, code: 'Throttling', kind: 'transient', exit: 75 },
    { status: 400, code: 'ThrottlingException', kind: 'transient', exit: 75 },
    { status: 400, code: 'PriorRequestNotComplete', kind: 'transient', exit: 75 },
    { status: 503, code: 'ServiceUnavailable', kind: 'transient', exit: 75 },
    { status: 500, code: 'InternalFailure', kind: 'transient', exit: 75 },
    { status: 502, code: 'BadGateway', kind: 'transient', exit: 75 },
    { status: 404, code: 'NoSuchHostedZone', kind: 'config', exit: 78 },
    { status: 403, code: 'AccessDenied', kind: 'config', exit: 78 },
    { status: 400, code: 'AccessDeniedException', kind: 'config', exit: 78 },
    { status: 400, code: 'InvalidInput', kind: 'config', exit: 78 },
    { status: 403, code: 'InvalidClientTokenId', kind: 'config', exit: 78 },
    { status: 400, code: 'SomethingNew', kind: undefined, exit: 70 },
  ];
  for (const { status, code, kind, exit } of cases) {
    it(`when Route53 answers ${status} ${code}, then the provider throws ${kind ?? 'it untranslated'} (exit ${exit}) and the message still names ${code}`, async () => {
      answerWith({ status, body: xmlError(code, `about ${code}`) });
      const result = await failure(() => provider().listOwned());
      assert.deepEqual([result.kind, result.code], [kind, exit], result.text);
      // A translated error names the endpoint and the call; one the watcher does not know stays as the SDK threw it.
      assert.equal(
        result.text,
        kind === undefined ? `${code}: about ${code}` : `${code}: Route53 at ${base}: ListResourceRecordSets (zone Z1): about ${code}`,
      );
    });
  }

  it('when a batch is rejected (InvalidChangeBatch), then apply throws ChangeRejectedError, which converge re-plans on', async () => {
    answerWith({ status: 400, body: xmlError('InvalidChangeBatch', '[Tried to create resource record set but it already exists]') });
    const result = await failure(() =>
      provider().apply([
        {
          action: 'CREATE',
          record: { name: 'play.example.com.', type: 'A', setIdentifier: 'st-api/n1/st-api', ttl: 30, values: ['192.0.2.1'] },
        },
      ]),
    );
    assert.ok(result.error instanceof ChangeRejectedError);
    assert.equal(result.kind, 'transient');
    assert.match(
      result.text,
      /^ChangeRejectedError: Route53 at http:\/\/[\d.:]+: ChangeResourceRecordSets \(zone Z1, 1 change\(s\)\): \[Tried to create/,
    );
  });

  it('when nothing listens at the endpoint, then unavailable (69), and the message names Route53, its address and the call', async () => {
    const result = await failure(() => provider({ endpoint: `http://${closed}` }).listOwned());
    assert.deepEqual([result.kind, result.code], ['unavailable', 69], result.text);
    assert.equal(
      result.text,
      `Route53Error: Route53 at http://${closed}: ListResourceRecordSets (zone Z1): connect ECONNREFUSED ${closed}`,
    );
  });

  it('when Route53 does not answer within the request timeout, then transient (75)', async () => {
    answerWith({ status: 200, body: '', hang: true });
    const result = await failure(() => provider({ requestTimeout: 200 }).listOwned());
    assert.deepEqual([result.kind, result.code], ['transient', 75], result.text);
    assert.match(result.text, /^TimeoutError: /);
  });

  it('when the credential chain finds no credentials, then config (78)', async () => {
    const noCredentials = (): Promise<never> =>
      Promise.reject(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const result = await failure(() => provider({ credentials: noCredentials }).listOwned());
    assert.deepEqual([result.kind, result.code], ['config', 78], result.text);
  });
});

const STATUS: RunStatus = {
  lastRun: '2026-01-01T00:00:00.000Z',
  command: 'reconcile',
  result: 'unchanged',
  message: '',
  consulIndex: 1,
  appliedIndex: 1,
  lastChange: null,
  belowFloor: false,
  floorEngaged: false,
  published: [],
  eligible: [],
  excluded: [],
  handWrittenExclusions: [],
  keptByFloor: [],
  skipped: [],
  changes: { create: 0, upsert: 0, delete: 0, deferredDeletes: 0 },
  route53Calls: 0,
};

describe('Consul: client errors by answer', { timeout: 30_000 }, () => {
  const consul = (address = base, timeoutMs = 2000): ConsulState =>
    new ConsulState({ address, token: undefined, kvPrefix: 'st-api/dns', timeoutMs });

  // Every error answer counts as unavailable in the watcher, 403 included (EVERY_ANSWER_UNAVAILABLE in
  // the shared client): the watcher has always exited 69 for them (the hooks read 403 apart).
  const answers: { status: number; body: string; kind: ErrorKind | undefined; exit: number }[] = [
    { status: 403, body: 'Permission denied', kind: 'unavailable', exit: 69 },
    { status: 401, body: 'ACL not found', kind: 'unavailable', exit: 69 },
    { status: 429, body: 'rate limit exceeded', kind: 'unavailable', exit: 69 },
    { status: 500, body: 'rpc error: No cluster leader', kind: 'unavailable', exit: 69 },
    { status: 503, body: 'unavailable', kind: 'unavailable', exit: 69 },
  ];
  for (const { status, body, kind, exit } of answers) {
    it(`when Consul answers ${status}, then ${kind ?? 'untranslated'} (${exit})`, async () => {
      answerWith({ status, body: JSON.stringify(body) });
      const result = await failure(() => consul().readStatus());
      assert.deepEqual([result.kind, result.code], [kind, exit], result.text);
      // What the runbook tells on-call to look for: a refused token reads as an answer, not as no answer.
      assert.match(result.text, new RegExp(`^ConsulResponseError: GET /v1/kv/st-api/dns/status: HTTP ${status} `));
    });
  }

  it('when nothing listens at CONSUL_HTTP_ADDR, then unavailable (69), the message naming ECONNREFUSED', async () => {
    const result = await failure(() => consul(closed).readStatus());
    assert.deepEqual([result.kind, result.code], ['unavailable', 69], result.text);
    assert.match(result.text, /ECONNREFUSED/);
  });

  it('when Consul does not answer within consulTimeoutMs, then unavailable (69)', async () => {
    answerWith({ status: 200, body: '', hang: true });
    const result = await failure(() => consul(base, 200).readStatus());
    assert.deepEqual([result.kind, result.code], ['unavailable', 69], result.text);
  });

  it('when every call of a run goes through the client, then each failure is translated: exclusions, exclude, include, status, the lock', async () => {
    answerWith({ status: 500, body: '"no leader"' });
    const state = consul();
    const calls: [string, () => Promise<unknown>][] = [
      ['health', () => new ConsulHealthSource({ address: base, token: undefined, timeoutMs: 2000 }, 'st-api').read()],
      ['exclusions', () => state.exclusions()],
      ['exclude', () => state.exclude({ node: 'n1', reason: 'r', by: 'b', at: 'now' })],
      ['include', () => state.include('n1')],
      ['writeStatus', () => state.writeStatus(STATUS)],
      ['withLock', () => state.withLock('me', 100, () => Promise.resolve())],
    ];
    for (const [name, call] of calls) assert.equal((await failure(call)).kind, 'unavailable', name);
  });

  it('when the status key holds text that is not JSON, then bad input (65), naming the key', async () => {
    answerWith({ status: 200, body: JSON.stringify([{ Key: 'st-api/dns/status', Value: Buffer.from('not json').toString('base64') }]) });
    const result = await failure(() => consul().readStatus());
    assert.ok(result.error instanceof KvValueError);
    assert.deepEqual([result.kind, result.code], ['bad-input', 65]);
    assert.match(result.text, /st-api\/dns\/status is not JSON/);
  });

  it('when the answer cannot be decoded, then unavailable (69), as every Consul answer the watcher cannot use', async () => {
    answerWith({ status: 200, body: '{"truncated' });
    const result = await failure(() => consul().readStatus());
    assert.deepEqual([result.kind, result.code], ['unavailable', 69], result.text);
  });
});
