// The run command as a newcomer uses it: the real entry point in its own process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createServer } from 'node:net';
import { freePort, waitFor } from '../../testkit/processes.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'api', 'main.ts');
const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.kill('SIGKILL')));

// The embedded demo keeps its keys in a directory; a test must not write into the repository.
const demoDir = mkdtempSync(join(tmpdir(), 'st-demo-keys-'));

function startMain(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  // The runner's own listen variables must not leak into a test that sets its own.
  const inherited = { ...process.env };
  for (const name of ['ST_API_HOST', 'ST_API_PORT', 'PORT']) delete inherited[name];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...inherited, ST_API_DEMO_DIR: demoDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

describe('when st-api starts with no configuration (the embedded default)', () => {
  it('then it prints a curl command whose token and body return a signed URL, and stops cleanly on SIGTERM', async () => {
    const { child, output } = startMain({ ST_API_PORT: '0', ST_API_CONFIG: '' });
    const printed = await waitFor(
      () => /curl -sS -X POST (\S+) \\\n\s+-H 'Authorization: Bearer (\S+)' \\\n.*\n\s+-d '(.+)'/.exec(output()) ?? undefined,
      {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'the demo curl command',
      },
    );
    const [, url = '', token = '', body = ''] = printed;
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(response.status, 200);
    const playback = (await response.json()) as { url: string; delivery: string; cookies?: { name: string }[] };
    // Whichever CDN was drawn, the token is there: in the path, in cookies, or in the query.
    const urlWithToken: Record<string, RegExp> = {
      'path-token': /^https:\/\/[^/]+\/t\/[\w-]{22}\/\d+\/vod\/tt-demo-0001\//,
      query: /^https:\/\/.+\/vod\/tt-demo-0001\/.+[?&](Signature|__token__|md5|wowzatokenhash)=/,
    };
    if (playback.delivery === 'cookie') assert.ok((playback.cookies ?? []).length > 0, JSON.stringify(playback));
    else assert.match(playback.url, urlWithToken[playback.delivery] ?? /no such delivery mode/);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.match(output(), /"msg":"stopped"/);
  });
});

describe('when the configuration file is invalid', () => {
  it('then start-up stops with exit 78 and names every bad key, without echoing any secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        listen: { port: 'eighty' },
        auth: { issuer: '', audience: 'st-api', keys: [{ algorithm: 'HS256', key: 'hunter2-very-secret' }] },
        mysql: { host: 'db', user: 'st', password: { env: 'ST_API_TEST_MISSING_PASSWORD' }, database: 'catalog' },
        cdns: [
          { name: 'Bad Name', origin: 'ftp://x', signer: { type: 'akamai', keys: [{ id: 'a', active: true, secret: 'not-hex-s3cr3t' }] } },
        ],
        unknownSection: true,
      }),
    );
    const { child, output } = startMain({ ST_API_CONFIG: file });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 78);
    const text = output();
    for (const key of [
      'listen.port',
      'auth.issuer',
      'auth.keys.0.key',
      'mysql.password',
      'cdns.0.name',
      'cdns.0.origin',
      'cdns.0.signer.keys.0.secret',
      'unknownSection',
    ]) {
      assert.ok(text.includes(key), `the message names ${key}:\n${text}`);
    }
    assert.doesNotMatch(text, /hunter2|s3cr3t/);
  });
});

/** The port and host the node announced in its "st-api listening" line. */
async function listeningOn(output: () => string): Promise<{ host: string; port: number }> {
  return waitFor(
    () => {
      const match = /"host":"([^"]+)","port":(\d+).*"msg":"st-api listening"/.exec(output());
      return match === null ? undefined : { host: match[1] ?? '', port: Number(match[2]) };
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'st-api to listen' },
  );
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

/** A stack trace line as Node prints one: "    at fn (file:line:col)". */
const STACK_LINE = /^\s+at .+[:(]/m;

describe('when the listen port comes from the environment', () => {
  it('then PORT is honoured (the convention of container platforms)', async () => {
    const port = await freePort();
    const { child, output } = startMain({ PORT: String(port), ST_API_CONFIG: '' });
    assert.equal((await listeningOn(output)).port, port);
    child.kill('SIGKILL');
  });

  it('then ST_API_PORT wins over PORT when both are set', async () => {
    const [wanted, ignored] = [await freePort(), await freePort()];
    const { child, output } = startMain({ ST_API_PORT: String(wanted), PORT: String(ignored), ST_API_CONFIG: '' });
    assert.equal((await listeningOn(output)).port, wanted);
    child.kill('SIGKILL');
  });

  for (const [name, value] of [
    ['ST_API_PORT', 'abc'],
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['ST_API_PORT', '-1'],
  ] as const) {
    it(`then ${name}=${value} stops start-up with exit 78 and one sentence naming ${name}, without a stack trace`, async () => {
      const { child, output } = startMain({ [name]: value, ST_API_CONFIG: '' });
      assert.equal(await exitOf(child), 78);
      assert.match(output(), new RegExp(`${name}: must be a port number from 0 to 65535`));
      assert.doesNotMatch(output(), STACK_LINE);
      assert.doesNotMatch(output(), /listening/);
    });
  }
});

describe('when the listen address cannot be bound', () => {
  it('then a port in use ends start-up with exit 69 (EX_UNAVAILABLE) and a sentence naming host:port, without a stack trace', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as { port: number }).port;
    try {
      const { child, output } = startMain({ ST_API_HOST: '127.0.0.1', ST_API_PORT: String(port), ST_API_CONFIG: '' });
      assert.equal(await exitOf(child), 69);
      assert.match(
        output(),
        new RegExp(`st-api: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process \\(EADDRINUSE\\)`),
      );
      assert.doesNotMatch(output(), STACK_LINE);
    } finally {
      holder.close();
    }
  });

  it('then an address this machine does not have ends start-up with exit 69 and a sentence naming it', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
    const { child, output } = startMain({ ST_API_HOST: '192.0.2.1', ST_API_PORT: '0', ST_API_CONFIG: '' });
    assert.equal(await exitOf(child), 69);
    assert.match(
      output(),
      /st-api: cannot listen on 192\.0\.2\.1:0: no network interface of this machine has that address \(EADDRNOTAVAIL\)/,
    );
    assert.doesNotMatch(output(), STACK_LINE);
  });
});

describe('when st-api runs on a laptop without configuration', () => {
  it('then the embedded demo listens on loopback only, and ST_API_HOST=0.0.0.0 (set by the image) opens it', async () => {
    const laptop = startMain({ ST_API_PORT: '0', ST_API_CONFIG: '' });
    assert.equal((await listeningOn(laptop.output)).host, '127.0.0.1');
    laptop.child.kill('SIGKILL');
    const container = startMain({ ST_API_HOST: '0.0.0.0', ST_API_PORT: '0', ST_API_CONFIG: '' });
    const { host, port } = await listeningOn(container.output);
    assert.equal(host, '0.0.0.0');
    // The printed instructions point at an address a human can reach, not at the wildcard.
    assert.match(container.output(), new RegExp(`curl -sS -X POST http://127\\.0\\.0\\.1:${port}/v1/playback-urls`));
    // …and so does the printed API description, served by the node itself.
    const api = /API: (\S+\/openapi\.json)/.exec(container.output())?.[1] ?? '';
    assert.equal(api, `http://127.0.0.1:${port}/openapi.json`);
    const doc = (await (await fetch(api)).json()) as { servers: { url: string }[] };
    assert.equal(doc.servers[0]?.url, `http://127.0.0.1:${port}`);
    container.child.kill('SIGKILL');
  });
});

describe('when the node is asked what it runs', () => {
  it('then /health/live and st_api_build_info name the package version, the commit from ST_API_COMMIT and the Node version', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    const { child, output } = startMain({ ST_API_PORT: '0', ST_API_CONFIG: '', ST_API_COMMIT: 'e2ae3f9c1d0b' });
    const { port } = await listeningOn(output);
    const live = await fetch(`http://127.0.0.1:${port}/health/live`);
    assert.equal(await live.text(), `ok version=${version} commit=e2ae3f9c1d0b`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.ok(
      metrics.includes(`st_api_build_info{version="${version}",commit="e2ae3f9c1d0b",node="${process.version}"} 1`),
      metrics
        .split('\n')
        .filter((line) => line.includes('build_info'))
        .join('\n'),
    );
    child.kill('SIGKILL');
  });
});
