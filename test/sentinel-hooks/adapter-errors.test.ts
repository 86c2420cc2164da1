// The hooks' clients translate their failures at the boundary: the Consul agent's answers and the
// Redis/Sentinel connections leave them as ProgramErrors whose kind run() turns into Sentinel's exit
// code (README: 1 transient, run again; 2 permanent). Real clients against loopback servers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exitCodeOf, ProgramError, type ErrorKind } from '../../common/cli/errors.ts';
import { ConsulClient, ConsulResponseError, ConsulUnavailableError, KINDS_BY_STATUS } from '../../common/consul/client.ts';
import { EXIT_BY_KIND } from '../../sentinel-hooks/exit-codes.ts';
import { command, NoReplyError, ProtocolError } from '../../sentinel-hooks/resp.ts';
import { DeadlineError, sleep } from '../../sentinel-hooks/sync.ts';
import { readRole } from '../../sentinel-hooks/truth.ts';
import { freePort } from '../../testkit/processes.ts';
import { startScriptedHttpServer, type ScriptedHttpServer } from '../../testkit/scripted-http.ts';

let consul: ScriptedHttpServer;
let consulAddr: string;
/** A port nothing listens on. */
let closedPort: number;

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

before(async () => {
  consul = await startScriptedHttpServer();
  consulAddr = consul.address;
  closedPort = await freePort();
});

after(() => consul.close());

async function failure(call: () => Promise<unknown>): Promise<{ kind: ErrorKind | undefined; code: number; error: unknown }> {
  try {
    await call();
  } catch (error) {
    return { kind: error instanceof ProgramError ? error.kind : undefined, code: exitCodeOf(error, EXIT_BY_KIND), error };
  }
  assert.fail('the call succeeded');
}

describe('Consul agent: answers by status', { timeout: 30_000 }, () => {
  const agent = (address = consulAddr, signal = new AbortController().signal): ConsulClient =>
    new ConsulClient({ address, token: undefined, timeoutMs: 300, signal, failureKinds: KINDS_BY_STATUS });

  const cases: { status: number; body: string; kind: ErrorKind; exit: number; why: string }[] = [
    { status: 403, body: 'Permission denied', kind: 'config', exit: 2, why: 'the token or its policy' },
    { status: 401, body: 'ACL not found', kind: 'config', exit: 2, why: 'the token' },
    { status: 400, body: 'Bad request', kind: 'config', exit: 2, why: 'we sent something the agent refuses' },
    { status: 429, body: 'rate limit exceeded', kind: 'transient', exit: 1, why: 'rate limited: run again' },
    { status: 500, body: 'No cluster leader', kind: 'unavailable', exit: 1, why: 'the servers: run again' },
    { status: 503, body: 'unavailable', kind: 'unavailable', exit: 1, why: 'the servers: run again' },
    { status: 200, body: '{"truncated', kind: 'bad-input', exit: 2, why: 'an answer that is not JSON' },
  ];
  for (const { status, body, kind, exit, why } of cases) {
    it(`when the agent answers ${status} ${body}, then ${kind} (exit ${exit}): ${why}`, async () => {
      consul.answer = { status, body };
      const result = await failure(() => agent().agentChecks());
      assert.ok(result.error instanceof ConsulResponseError);
      assert.deepEqual([result.kind, result.code], [kind, exit]);
    });
  }

  const silent: [string, () => ConsulClient][] = [
    ['nothing listens', () => agent(`127.0.0.1:${closedPort}`)],
    ['the agent does not answer within consulTimeoutMs', () => ((consul.answer = { status: 200, body: '', hang: true }), agent())],
    ['the run is past its deadline', () => agent(consulAddr, AbortSignal.abort())],
  ];
  for (const [what, make] of silent) {
    it(`when ${what}, then unavailable (exit 1)`, async () => {
      const result = await failure(() => make().agentChecks());
      assert.ok(result.error instanceof ConsulUnavailableError);
      assert.deepEqual([result.kind, result.code], ['unavailable', 1]);
    });
  }
});

describe('Redis and Sentinel connections', { timeout: 30_000 }, () => {
  const servers: Server[] = [];
  after(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });
  /** A server that does `onConnection` with every client. */
  async function redisLike(onConnection: (socket: Socket) => void): Promise<number> {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      onConnection(socket);
    });
    server.on('close', () => sockets.forEach((socket) => socket.destroy()));
    servers.push(server);
    const port = await listen(server);
    after(() => sockets.forEach((socket) => socket.destroy()));
    return port;
  }

  const cases: {
    what: string;
    port: () => Promise<number>;
    error: new (...args: never[]) => ProgramError;
    kind: ErrorKind;
    exit: number;
    message: RegExp;
  }[] = [
    {
      what: 'nothing listens',
      port: () => Promise.resolve(closedPort),
      error: NoReplyError,
      kind: 'unavailable',
      exit: 1,
      message: /^ECONNREFUSED$/,
    },
    {
      what: 'it never replies',
      port: () => redisLike(() => undefined),
      error: NoReplyError,
      kind: 'unavailable',
      exit: 1,
      message: /^no reply from 127\.0\.0\.1:\d+ within 200 ms$/,
    },
    {
      what: 'it closes the connection',
      port: () => redisLike((socket) => socket.end()),
      error: NoReplyError,
      kind: 'unavailable',
      exit: 1,
      message: /closed the connection$/,
    },
    {
      what: 'it replies with something that is not RESP',
      port: () => redisLike((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n')),
      error: ProtocolError,
      kind: 'bad-input',
      exit: 2,
      message: /^not a RESP reply/,
    },
    {
      what: 'it replies with more than any answer holds',
      port: () => redisLike((socket) => socket.write(`$${2 * 1024 * 1024}\r\n${'x'.repeat(1024 * 1024 + 1)}`)),
      error: ProtocolError,
      kind: 'bad-input',
      exit: 2,
      message: /exceeds \d+ bytes$/,
    },
  ];
  for (const { what, port, error, kind, exit, message } of cases) {
    it(`when ${what}, then ${error.name} (${kind}, exit ${exit})`, async () => {
      const at = await port();
      const result = await failure(() => command('127.0.0.1', at, ['ROLE'], { timeoutMs: 200 }));
      assert.ok(result.error instanceof error, String(result.error));
      assert.deepEqual([result.kind, result.code], [kind, exit]);
      assert.match((result.error as Error).message, message);
    });
  }

  it('when an instance refuses the connection, then its role reads unreachable with the bare code, as a check output shows it', async () => {
    const role = await readRole({ ip: '127.0.0.1', port: closedPort }, { timeoutMs: 200, signal: new AbortController().signal });
    assert.deepEqual(role, { kind: 'unreachable', error: 'ECONNREFUSED' });
  });
});

describe('the run’s deadline', () => {
  it('when a wait is cut short by the deadline, then DeadlineError, transient (exit 1)', async () => {
    const result = await failure(() => sleep(60_000, AbortSignal.abort()));
    assert.ok(result.error instanceof DeadlineError);
    assert.deepEqual([result.kind, result.code], ['transient', 1]);
    assert.equal((result.error as Error).message, 'deadline reached');
  });

  it('when the deadline passes during a ROLE probe, then the probe fails transient (exit 1), so Sentinel runs the hook again', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    const port = await listen(silent);
    try {
      const deadline = new AbortController();
      const probe = failure(() => readRole({ ip: '127.0.0.1', port }, { timeoutMs: 10_000, signal: deadline.signal }));
      setTimeout(() => deadline.abort(), 50);
      const result = await probe;
      assert.deepEqual([result.kind, result.code], ['unavailable', 1], String(result.error));
      assert.equal(
        (await failure(() => command('127.0.0.1', port, ['ROLE'], { timeoutMs: 200, signal: AbortSignal.abort() }))).code,
        1,
        'a probe started after the deadline',
      );
    } finally {
      silent.close();
    }
  });
});
