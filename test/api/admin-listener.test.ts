// The admin listener (config `admin`, issue #13): /metrics, /health/live and /health/deep on a second,
// plain-HTTP port for Prometheus and operators, so the public port that DNS hands to every client stops
// serving /metrics. The real entry point in its own process: its servers, its signal handling, its exit codes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { adminClash, adminFromEnv } from '../../api/listen.ts';
import { makeTempDir, refusesConnections, waitFor } from '../../testkit/processes.ts';
import { startTestNode } from '../../testkit/service.ts';
import { API_MAIN, startStApiProcess, type StApiProcess } from './st-api-process.ts';

const ADMIN = { admin: { host: '127.0.0.1', port: 0 } };
const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

let node: StApiProcess | undefined;
afterEach(async () => {
  await node?.kill();
  node = undefined;
});

/** The admin port from the node's "st-api admin listening" line (logged before the public one). */
function adminUrlOf(target: StApiProcess): string {
  const match = /"port":(\d+).*"msg":"st-api admin listening"/.exec(target.output());
  assert.ok(match !== null, `no admin listening line:\n${target.output()}`);
  return `http://127.0.0.1:${match[1]}`;
}

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

const PLAY_BODY = JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' });

/** A play whose headers and half its body are sent, keeping the process in its drain; `finish()` sends the rest. */
async function playInFlight(target: StApiProcess): Promise<{ received(): string; finish(): void }> {
  const socket = connect(target.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const half = Math.floor(PLAY_BODY.length / 2);
  socket.write(
    `POST /v1/playback-urls HTTP/1.1\r\nHost: st-api\r\nAuthorization: Bearer ${target.demo.tokenFor('demo-user', 600)}\r\nContent-Type: application/json\r\nContent-Length: ${PLAY_BODY.length}\r\n\r\n${PLAY_BODY.slice(0, half)}`,
  );
  return { received: () => received, finish: () => socket.write(PLAY_BODY.slice(half)) };
}

// Processes expected to fail at start-up: startStApiProcess waits for a listening line they never print.
const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.kill('SIGKILL')));

async function runToExit(
  overrides: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  const dir = await makeTempDir('st-api-admin');
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...embeddedDemo().rawConfig, listen: { host: '127.0.0.1', port: 0 }, ...overrides }));
  const inherited = { ...process.env };
  for (const name of ['ST_API_HOST', 'ST_API_PORT', 'PORT', 'ST_API_ADMIN_HOST', 'ST_API_ADMIN_PORT']) delete inherited[name];
  const child = spawn(process.execPath, ['--import', 'tsx', API_MAIN], {
    env: { ...inherited, ST_API_CONFIG: configFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, output };
  } finally {
    clearTimeout(timer);
  }
}

describe('when admin is set', () => {
  it('then /metrics is served on the admin port only: the public port answers 404 NOT_FOUND like any unknown path', async () => {
    node = await startStApiProcess(ADMIN);
    const admin = adminUrlOf(node);

    const scraped = await get(`${admin}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^st_api_build_info\{/m);

    const publicMetrics = await get(`${node.baseUrl}/metrics`);
    assert.equal(publicMetrics.status, 404);
    assert.match(publicMetrics.type, /^application\/problem\+json/);
    assert.equal((JSON.parse(publicMetrics.body) as { code: string }).code, 'NOT_FOUND');
  });

  it('then /health/live and /health/deep answer on both ports, and the admin port serves nothing else', async () => {
    node = await startStApiProcess(ADMIN);
    const admin = adminUrlOf(node);
    for (const base of [node.baseUrl, admin]) {
      const deep = await get(`${base}/health/deep`);
      assert.equal(deep.status, 200, `${base}: ${deep.body}`);
      assert.match(deep.body, /^ok /);
      const live = await get(`${base}/health/live`);
      assert.equal(live.status, 200);
      assert.match(live.body, /^ok version=/);
    }
    for (const path of ['/openapi.json', '/no-such-path']) {
      const answer = await get(`${admin}${path}`);
      assert.equal(answer.status, 404, path);
      assert.equal((JSON.parse(answer.body) as { code: string }).code, 'NOT_FOUND');
    }
    const play = await fetch(`${admin}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.demo.tokenFor('demo-user', 600)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(play.status, 404, 'no plays on the admin port');
    // The public port still plays.
    const publicPlay = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.demo.tokenFor('demo-user', 600)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(publicPlay.status, 200);
  });

  it('then admin requests are logged at debug, marked listener=admin, and not at info', async () => {
    node = await startStApiProcess({ ...ADMIN, logLevel: 'debug' });
    const admin = adminUrlOf(node);
    await get(`${admin}/metrics`);
    await get(`${admin}/no-such-path`);
    const lines = await waitFor(
      () => {
        const found = (node?.output() ?? '')
          .split('\n')
          .filter((line) => line.includes('"listener":"admin"'))
          .map((line) => JSON.parse(line) as { level: number; route: string; status: number; msg: string });
        return found.length >= 2 ? found : undefined;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'two admin access-log lines' },
    );
    assert.deepEqual(
      lines.map((line) => [line.msg, line.level, line.route, line.status]),
      [
        ['request', 20, '/metrics', 200],
        ['request', 20, 'unmatched', 404],
      ],
    );
  });

  it('then SIGTERM turns /health/deep critical on both ports, then both stop accepting while a play finishes, and it exits 0', async () => {
    node = await startStApiProcess({
      ...ADMIN,
      shutdown: { drainMs: 4000, timeoutMs: 20_000 },
      // Long enough that the in-flight play is ended by this test, not by the request timeout.
      http: { headersTimeoutMs: 30_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5000 },
    });
    const admin = adminUrlOf(node);
    const adminPort = Number(new URL(admin).port);
    const inFlight = await playInFlight(node);

    node.child.kill('SIGTERM');
    for (const base of [node.baseUrl, admin]) {
      const body = await waitFor(
        async () => {
          const deep = await get(`${base}/health/deep`);
          return deep.status === 503 ? deep.body : undefined;
        },
        { timeoutMs: 3000, intervalMs: 50, what: `${base}/health/deep to turn critical` },
      );
      assert.match(body, /^fail node=draining /);
    }
    for (const port of [node.port, adminPort]) {
      await waitFor(() => refusesConnections(port), { timeoutMs: 15_000, intervalMs: 100, what: `port ${port} to close` });
    }
    // Both closed by the drain itself, not by the process ending: it still waits for the play's body.
    assert.equal(node.child.exitCode, null, node.output());
    assert.equal(inFlight.received(), '');
    inFlight.finish();
    const exit = await node.exited;
    assert.match(inFlight.received(), /^HTTP\/1\.1 200 /, 'the in-flight play is answered');
    assert.equal(exit.code, 0, node.output());
    assert.match(node.output(), /"msg":"stopped"/);
  });

  it('then an admin port in use ends start-up with exit 69 and one sentence naming the admin listener and host:port', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as { port: number }).port;
    try {
      const { code, output } = await runToExit({ admin: { host: '127.0.0.1', port } });
      assert.equal(code, 69, output);
      assert.match(
        output,
        new RegExp(
          `st-api: admin listener: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process \\(EADDRINUSE\\)`,
        ),
      );
      assert.doesNotMatch(output, STACK_LINE);
      assert.doesNotMatch(output, /st-api listening/);
    } finally {
      holder.close();
    }
  });

  it('then the admin port equal to the public one on the same address is a configuration error: exit 78, not a retried bind failure', async () => {
    const { code, output } = await runToExit({ listen: { host: '0.0.0.0', port: 18_999 }, admin: { host: '127.0.0.1', port: 18_999 } });
    assert.equal(code, 78, output);
    assert.match(output, /admin\.port: must differ from listen\.port \(18999\) on the same address/);
    assert.doesNotMatch(output, STACK_LINE);
  });
});

describe('when ST_API_ADMIN_PORT is set without admin in the configuration', () => {
  it('then the admin listener runs on 127.0.0.1 at that port', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as { port: number }).port;
    // The port is taken on purpose: the exit sentence proves the variable turned the listener on, at that address.
    try {
      const { code, output } = await runToExit({}, { ST_API_ADMIN_PORT: String(port) });
      assert.equal(code, 69, output);
      assert.match(output, new RegExp(`st-api: admin listener: cannot listen on 127\\.0\\.0\\.1:${port}: `));
    } finally {
      holder.close();
    }
  });

  it('then the overrides follow the listen variables’ rules', () => {
    assert.deepEqual(adminFromEnv(undefined, {}), undefined);
    assert.deepEqual(adminFromEnv(undefined, { ST_API_ADMIN_PORT: '9180' }), { host: '127.0.0.1', port: 9180 });
    assert.deepEqual(adminFromEnv({ host: '10.0.0.5', port: 9180 }, { ST_API_ADMIN_PORT: '9181' }), { host: '10.0.0.5', port: 9181 });
    assert.deepEqual(adminFromEnv({ host: '10.0.0.5', port: 9180 }, { ST_API_ADMIN_HOST: '0.0.0.0', ST_API_ADMIN_PORT: '' }), {
      host: '0.0.0.0',
      port: 9180,
    });
    assert.throws(() => adminFromEnv(undefined, { ST_API_ADMIN_PORT: 'abc' }), /ST_API_ADMIN_PORT: must be a port number from 0 to 65535/);
    assert.throws(() => adminFromEnv(undefined, { ST_API_ADMIN_HOST: '0.0.0.0' }), /ST_API_ADMIN_HOST: needs admin\.port/);

    assert.equal(adminClash({ host: '0.0.0.0', port: 8443 }, { host: '127.0.0.1', port: 9180 }), undefined);
    assert.equal(adminClash({ host: '10.0.0.5', port: 8443 }, { host: '127.0.0.1', port: 8443 }), undefined, 'different addresses');
    assert.equal(adminClash({ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }), undefined, 'both ephemeral');
    assert.match(adminClash({ host: '::', port: 8443 }, { host: '127.0.0.1', port: 8443 }) ?? '', /must differ/);
  });
});

describe('when admin is not set', () => {
  it('then the public port serves /metrics as before, and no admin listener starts', async () => {
    node = await startStApiProcess();
    const scraped = await get(`${node.baseUrl}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^st_api_build_info\{/m);
    assert.doesNotMatch(node.output(), /admin listening/);
  });
});

describe('when an in-process test node (testkit/service.ts) is given admin', () => {
  it('then it serves the admin app on its own port as main.ts does, and the public port has no /metrics', async () => {
    const testNode = await startTestNode({ overrides: ADMIN });
    try {
      assert.ok(testNode.adminUrl !== undefined);
      assert.equal((await get(`${testNode.adminUrl}/metrics`)).status, 200);
      assert.equal((await get(`${testNode.adminUrl}/health/deep`)).status, 200);
      assert.equal((await get(`${testNode.baseUrl}/metrics`)).status, 404);
    } finally {
      await testNode.close();
    }
  });
});
