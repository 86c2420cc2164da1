// The run command as a newcomer uses it: the real entry point in its own process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from '../../testkit/processes.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'api', 'main.ts');
const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.kill('SIGKILL')));

// The embedded demo keeps its keys in a directory; a test must not write into the repository.
const demoDir = mkdtempSync(join(tmpdir(), 'st-demo-keys-'));

function startMain(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, ST_API_DEMO_DIR: demoDir, ...env },
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
