// The three programs' configuration files and secret files, as an operator meets them: each real
// entry point runs as a child process, and a missing or broken file stops it with the program's
// configuration exit code and a sentence naming the file — never with the file's text, which may
// hold a secret (issue #10 item 15).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { makeTempDir } from '../../testkit/processes.ts';
import { startStApiProcess, type StApiProcess } from '../api/st-api-process.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SECRET = 'hunter2-do-not-echo';
/** Not JSON, with a secret where a parser's message would quote it. */
const BROKEN_JSON = `{"password": ${SECRET}}`;

interface Program {
  name: string;
  /** Its configuration exit code: sysexits EX_CONFIG, or Sentinel's "permanent". */
  configExit: number;
  /** The command line and environment that make it read `file`. */
  invoke(file: string): { args: string[]; env: Record<string, string> };
}

const PROGRAMS: Program[] = [
  { name: 'st-api', configExit: 78, invoke: (file) => ({ args: ['api/main.ts'], env: { ST_API_CONFIG: file } }) },
  { name: 'watcher', configExit: 78, invoke: (file) => ({ args: ['watcher/main.ts', 'status', '--config', file], env: {} }) },
  // Sentinel runs the hooks with its own arguments after the command: the file comes from the environment.
  {
    name: 'sentinel-hooks',
    configExit: 2,
    invoke: (file) => ({ args: ['sentinel-hooks/main.ts', 'reconcile'], env: { ST_SENTINEL_HOOKS_CONFIG: file } }),
  },
];

/** Everything that could reach a real service points at a closed loopback port instead. */
const LOOPBACK_ONLY = {
  CONSUL_HTTP_ADDR: '127.0.0.1:1',
  AWS_ENDPOINT_URL_ROUTE_53: 'http://127.0.0.1:1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
  AWS_REGION: 'us-east-1',
};

async function runProgram(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const clean = { ...process.env };
  for (const name of ['ST_API_CONFIG', 'ST_DNS_CONFIG', 'ST_SENTINEL_HOOKS_CONFIG', 'CONSUL_HTTP_TOKEN', 'CONSUL_HTTP_TOKEN_FILE'])
    delete clean[name];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...clean, ...LOOPBACK_ONLY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // A program that does not stop on a bad file is a failure, not a hung test.
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, output };
}

let dir: string;
before(async () => {
  dir = await makeTempDir('st-config-files');
});

describe('when a program is pointed at a configuration file that does not exist', () => {
  for (const program of PROGRAMS) {
    it(`then ${program.name} exits ${program.configExit} with a sentence naming the file`, async () => {
      const file = join(dir, `${program.name}-missing.json`);
      const { args, env } = program.invoke(file);
      const { code, output } = await runProgram(args, env);
      assert.equal(code, program.configExit, output);
      assert.ok(output.includes(`cannot read ${file}`), output);
    });
  }
});

describe('when a program is pointed at a configuration file that is not JSON', () => {
  for (const program of PROGRAMS) {
    it(`then ${program.name} exits ${program.configExit}, names the file and does not echo its text`, async () => {
      const file = join(dir, `${program.name}-broken.json`);
      writeFileSync(file, BROKEN_JSON);
      const { args, env } = program.invoke(file);
      const { code, output } = await runProgram(args, env);
      assert.equal(code, program.configExit, output);
      assert.ok(output.includes(`${file} is not valid JSON`), output);
      assert.doesNotMatch(output, /hunter2/);
    });
  }
});

describe('when st-api reads a secret from {"file": …}', () => {
  let node: StApiProcess | undefined;
  after(async () => node?.kill());

  it('then the key in the file (trailing newline and all) verifies client tokens', async () => {
    const demo = embeddedDemo();
    const keyFile = join(dir, 'client-key.pem');
    writeFileSync(keyFile, `${demo.clientKeys.publicPem}\n`);
    const raw = demo.rawConfig as { auth: Record<string, unknown> };
    // The process signs with its own demo keys; the verifying key comes from the file.
    node = await startStApiProcess({ auth: { ...raw.auth, keys: [{ kid: 'demo-rs256', algorithm: 'RS256', key: { file: keyFile } }] } });
    const response = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.tokenFor('demo-user', 600)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
  });

  it('then a secret file that cannot be read stops start-up with exit 78, naming the key and the file', async () => {
    const demo = embeddedDemo();
    const missing = join(dir, 'no-such-secret');
    const file = join(dir, 'api-missing-secret.json');
    const raw = demo.rawConfig as { auth: Record<string, unknown> };
    writeFileSync(
      file,
      JSON.stringify({ ...demo.rawConfig, auth: { ...raw.auth, keys: [{ algorithm: 'HS256', key: { file: missing } }] } }),
    );
    const { code, output } = await runProgram(['api/main.ts'], { ST_API_CONFIG: file });
    assert.equal(code, 78, output);
    assert.match(output, /auth\.keys\.0\.key: cannot read the secret file /);
    assert.ok(output.includes(missing), output);
  });
});

describe('when the watcher reads its Consul token from CONSUL_HTTP_TOKEN_FILE', () => {
  const seen: IncomingHttpHeaders[] = [];
  const consul = createServer((req, res) => {
    seen.push(req.headers);
    res.statusCode = 500;
    res.end('no');
  });
  let config: string;
  before(async () => {
    consul.listen(0, '127.0.0.1');
    await once(consul, 'listening');
    config = join(dir, 'watcher.json');
    writeFileSync(
      config,
      JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z0123456789', consulTimeoutMs: 1000, route53MaxAttempts: 1 }),
    );
  });
  after(() => consul.close());

  it('then the token in the file, without its newline, is what it sends to Consul', async () => {
    const tokenFile = join(dir, 'consul-token');
    writeFileSync(tokenFile, '0b3f2c9e-token-from-file\n');
    const address = `127.0.0.1:${(consul.address() as AddressInfo).port}`;
    const { output } = await runProgram(['watcher/main.ts', 'status', '--config', config], {
      CONSUL_HTTP_ADDR: address,
      CONSUL_HTTP_TOKEN_FILE: tokenFile,
    });
    assert.ok(seen.length > 0, `no request reached Consul:\n${output}`);
    for (const headers of seen) assert.equal(headers['x-consul-token'], '0b3f2c9e-token-from-file');
  });

  it('then a token file that cannot be read stops it with exit 78, naming the file', async () => {
    const missing = join(dir, 'no-consul-token');
    const { code, output } = await runProgram(['watcher/main.ts', 'status', '--config', config], { CONSUL_HTTP_TOKEN_FILE: missing });
    assert.equal(code, 78, output);
    assert.ok(output.includes(missing), output);
  });
});

describe('when the sentinel hooks read the Redis password from passwordFile', () => {
  it('then a password file that cannot be read stops them with exit 2 (permanent), naming the file', async () => {
    const missing = join(dir, 'no-redis-password');
    const file = join(dir, 'hooks.json');
    writeFileSync(
      file,
      JSON.stringify({
        masterName: 'mymaster',
        sentinels: [{ address: '127.0.0.1', port: 1 }],
        instances: [{ address: '127.0.0.1', port: 1 }],
        lockFile: join(dir, 'hooks.lock'),
        redisAuth: { passwordFile: missing },
      }),
    );
    const { code, output } = await runProgram(['sentinel-hooks/main.ts', 'reconcile'], { ST_SENTINEL_HOOKS_CONFIG: file });
    assert.equal(code, 2, output);
    assert.ok(output.includes(`redisAuth.passwordFile ${missing} cannot be read`), output);
  });
});
