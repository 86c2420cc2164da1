// A newcomer pastes a demo token into an app, restarts st-api, and the token still plays; any demo
// viewer's token comes from `npm run demo:token`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, startNodeServer, type NodeServer } from '../../testkit/node-server.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { persistentDemoKeys } from '../../api/demo/embedded.ts';
import type { SecretFileWarning } from '../../common/secret-file.ts';

const run = promisify(execFile);
const servers: NodeServer[] = [];
after(async () => Promise.all(servers.map((server) => server.stop())));

async function startDemo(demoDir: string): Promise<NodeServer> {
  const server = await startNodeServer({
    name: 'st-api-demo',
    script: 'api/main.ts',
    env: { ...process.env, ST_API_CONFIG: '', ST_API_PORT: '0', ST_API_DEMO_DIR: demoDir },
    listeningMessage: 'st-api listening',
  });
  servers.push(server);
  return server;
}

async function mintToken(demoDir: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'api/demo/token-cli.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ST_API_DEMO_DIR: demoDir },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function play(
  server: NodeServer,
  token: string,
  contentId = 'tt-demo-0001',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ contentId, device: 'web' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the demo keys and npm run demo:token', () => {
  it('when a token is minted for the SD buyer, then it plays at 480p, and still plays after st-api restarts', async () => {
    const demoDir = await makeTempDir('demo-keys');
    const minted = await mintToken(demoDir, 'sd-buyer', '--hours', '2');
    assert.equal(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'stdout holds the token alone');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sub: string; exp: number; iat: number };
    assert.equal(claims.sub, 'sd-buyer');
    assert.equal(claims.exp - claims.iat, 2 * 3600);

    const first = await startDemo(demoDir);
    const played = await play(first, token);
    assert.equal(played.status, 200, JSON.stringify(played.body));
    assert.equal(played.body['quality'], '480p');
    await first.stop();

    const second = await startDemo(demoDir);
    assert.equal((await play(second, token)).status, 200, 'the keys outlived the restart');
    assert.equal(statSync(demoDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(demoDir, 'keys.json')).mode & 0o777, 0o600);
  });

  it('when the key file is damaged, then new keys replace it and old tokens are refused as forged', async () => {
    const demoDir = await makeTempDir('demo-keys');
    const old = (await mintToken(demoDir, 'demo-user')).stdout.trim();
    const before = readFileSync(join(demoDir, 'keys.json'), 'utf8');
    writeFileSync(join(demoDir, 'keys.json'), '{"clientPublicPem": 1');
    const server = await startDemo(demoDir);
    assert.notEqual(readFileSync(join(demoDir, 'keys.json'), 'utf8'), before);
    const refused = await play(server, old);
    assert.equal(refused.status, 401);
    assert.equal(refused.body['code'], 'TOKEN_SIGNATURE_INVALID');
  });

  it('when the key directory cannot be written, then st-api still serves the demo and says its tokens die with it; the command refuses (73)', async () => {
    const blocker = join(await makeTempDir('demo-keys'), 'a-file');
    writeFileSync(blocker, '');
    const server = await startDemo(join(blocker, 'keys'));
    // The instructions follow the "listening" line.
    const notice = /demo keys not kept: cannot write .*a-file\/keys \(ENOTDIR\); tokens die with this process/;
    await waitFor(() => notice.test(server.outputTail()) || undefined, { timeoutMs: 10_000, what: `the notice in ${server.outputTail()}` });
    const health = await fetch(`${server.baseUrl}/health/live`);
    assert.equal(health.status, 200);
    const minted = await mintToken(join(blocker, 'keys'), 'demo-user');
    assert.equal(minted.code, 73);
    assert.equal(minted.stdout, '');
    assert.match(minted.stderr, /cannot be kept: cannot write .*ENOTDIR.*set ST_API_DEMO_DIR/);
  });

  it('when the command is misused, then it exits 64 with the usage and prints no token', async () => {
    const demoDir = await makeTempDir('demo-keys');
    for (const args of [[], ['a b'], ['sd-buyer', '--hours', '0'], ['sd-buyer', 'mobile-user'], ['--nope']]) {
      const result = await mintToken(demoDir, ...args);
      assert.equal(result.code, 64, args.join(' '));
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /usage: npm run demo:token -- <viewer>/);
    }
    const help = await mintToken(demoDir, '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Demo viewers: demo-user, premium-user/);
    const stranger = await mintToken(demoDir, 'nobody');
    assert.equal(stranger.code, 0);
    assert.match(stranger.stderr, /nobody is not a demo viewer/);
  });

  it('when the kept key file has been made readable by everyone, then it is still used and warned about as a secret file', async () => {
    const demoDir = await makeTempDir('demo-keys');
    const made = persistentDemoKeys(demoDir).keys;
    const warnings: SecretFileWarning[] = [];
    assert.deepEqual(persistentDemoKeys(demoDir, (warning) => warnings.push(warning)).keys, made);
    assert.equal(warnings.length, 0, 'the 0600 file it wrote is quiet');
    chmodSync(join(demoDir, 'keys.json'), 0o644);
    assert.deepEqual(persistentDemoKeys(demoDir, (warning) => warnings.push(warning)).keys, made);
    assert.deepEqual(
      warnings.map(({ file, mode }) => ({ file, mode })),
      [{ file: join(demoDir, 'keys.json'), mode: '0644' }],
    );
    assert.doesNotMatch(JSON.stringify(warnings), /PRIVATE KEY/);
  });
});
