// The watcher and the hooks reach Consul over TLS with the consul CLI's variables (issue #12): the
// Consul double serves its API over HTTPS with a certificate from a test CA made now, and each
// program runs its real run() (one watcher run as its own process, for the real exit code). A
// wrong CA, a name the certificate lacks, an https address at a plain-HTTP port and a client
// without the certificate a verify_incoming agent wants each fail as "unavailable" (watcher 69,
// hooks 1), with a sentence naming the agent and the reason; nothing ever falls back to HTTP.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run as hooksRun } from '../../sentinel-hooks/cli.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { runInProcess, type CliOutcome } from '../../testkit/in-process-cli.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../testkit/tls.ts';
import { readFileSync } from 'node:fs';
import {
  publishedNodes,
  REPO,
  startWatcherWorld,
  waitForPublished,
  WATCHER,
  watcherCli,
  watcherProcess,
  type CliResult,
  type WatcherWorld,
} from '../watcher/harness.ts';

/** Every TLS variable, unset ('' reads as unset, as for the consul CLI) unless a test sets it: watcherCli leaves its env in process.env. */
const NO_TLS_ENV = {
  CONSUL_HTTP_SSL: '',
  CONSUL_HTTP_SSL_VERIFY: '',
  CONSUL_CACERT: '',
  CONSUL_CAPATH: '',
  CONSUL_CLIENT_CERT: '',
  CONSUL_CLIENT_KEY: '',
  CONSUL_TLS_SERVER_NAME: '',
};

/** The reason depends on what the agent sends: its leaf alone, or with the CA (an agent that verifies clients has the CA at hand and sends it). */
const UNTRUSTED = (file: string): RegExp =>
  new RegExp(
    `Consul agent at https://127\\.0\\.0\\.1:\\d+: certificate not trusted by the CA in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\\) on GET /v1/[^;]+; set CONSUL_CACERT`,
  );
/** TLS 1.3 verifies the client after the client's side of the handshake: the agent's alert, or a reset when the request was on its way. */
const NO_CLIENT_CERT =
  /Consul agent at https:\/\/127\.0\.0\.1:\d+: (TLS handshake refused by the agent \(ERR_SSL_\w*ALERT\w*\)|ECONNRESET) on GET \/v1\/[^;]+; if the agent verifies clients \(tls\.https\.verify_incoming\), set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY/;

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let agentFiles: CertificateFiles;
let clientFiles: CertificateFiles;
const pem = (file: string): string => readFileSync(file, 'utf8');

before(async () => {
  dir = await makeTempDir('consul-tls');
  ca = createTestCa(dir);
  otherCa = createTestCa(dir, 'another CA');
  agentFiles = ca.server('consul-agent', ['server.dc1.consul']);
  clientFiles = ca.client('st-api-programs', 'st-api-programs');
});

/** Two nodes with a passing TTL check, so a reconcile has something to publish. */
async function registerNodes(world: WatcherWorld): Promise<void> {
  for (const [name, address] of [
    ['api-node-1', '10.0.1.11'],
    ['api-node-2', '10.0.1.12'],
  ] as const) {
    const node = await world.consul.addNode(name, address);
    const response = await fetch(`${node.agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'st-api', ID: 'st-api', Port: 8080, Check: { CheckID: 'st-api:ttl', TTL: '10m', Status: 'passing' } }),
    });
    assert.equal(response.status, 200, await response.text());
  }
}

function watcher(world: WatcherWorld, argv: string[], env: Record<string, string>): Promise<CliResult> {
  return watcherCli(world, argv, { env: { ...NO_TLS_ENV, ST_DNS_CONFIG: world.configFile, ...env } });
}

describe('the watcher against an agent that serves HTTPS', { timeout: 120_000 }, () => {
  let world: WatcherWorld;
  let httpsAddr: string;

  before(async () => {
    world = await startWatcherWorld({ minHealthy: 1 }, {}, { tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile) } });
    httpsAddr = world.consul.httpsAddr ?? assert.fail('no https address');
    await registerNodes(world);
  });
  after(() => world.stop());

  it('when CONSUL_HTTP_ADDR is https:// and CONSUL_CACERT names the CA, then reconcile publishes and status reads over TLS', async () => {
    const env = { CONSUL_HTTP_ADDR: httpsAddr, CONSUL_CACERT: ca.caFile };
    const reconcile = await watcher(world, ['reconcile'], env);
    assert.equal(reconcile.code, 0, reconcile.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
    const status = await watcher(world, ['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^api-node-1 +10\.0\.1\.11 +passing +yes +no$/m);
  });

  it('when the address and the CA come from the configuration file instead, then it works the same; a variable still wins', async () => {
    const configFile = join(dir, 'dns-watcher-tls.json');
    const base = JSON.parse(readFileSync(world.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...base, consulAddress: httpsAddr, consulCaFile: ca.caFile }));
    const fromFile = await watcher(world, ['status'], { ST_DNS_CONFIG: configFile, CONSUL_HTTP_ADDR: '' });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const envWins = await watcher(world, ['status'], {
      ST_DNS_CONFIG: configFile,
      CONSUL_HTTP_ADDR: httpsAddr,
      CONSUL_CACERT: otherCa.caFile,
    });
    assert.equal(envWins.code, 69, envWins.stderr);
    assert.match(envWins.stderr, UNTRUSTED(otherCa.caFile));
  });

  it('when CONSUL_CACERT names another CA, then the process exits 69, naming the agent, the x509 reason and CONSUL_CACERT', async () => {
    const result = await watcherProcess(world, ['status'], {
      env: { ...NO_TLS_ENV, CONSUL_HTTP_ADDR: httpsAddr, CONSUL_CACERT: otherCa.caFile },
    });
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, UNTRUSTED(otherCa.caFile));
  });

  it('when no CA is given, then the system CAs do not trust the test CA: 69', async () => {
    const result = await watcher(world, ['status'], { CONSUL_HTTP_ADDR: httpsAddr });
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, /certificate not trusted by the system's CAs \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
  });

  it('when the address is https:// (or CONSUL_HTTP_SSL=true) at the agent’s plain-HTTP port, then 69 and not one request over HTTP', async () => {
    const port = new URL(world.consul.httpAddr).port;
    for (const env of [
      { CONSUL_HTTP_ADDR: `https://127.0.0.1:${port}` },
      { CONSUL_HTTP_ADDR: `http://127.0.0.1:${port}`, CONSUL_HTTP_SSL: 'true' },
    ]) {
      world.consul.clearLogs();
      const result = await watcher(world, ['status'], { ...env, CONSUL_CACERT: ca.caFile });
      assert.equal(result.code, 69, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`Consul agent at https://127\\.0\\.0\\.1:${port}: no TLS at this address \\(\\w+[^)]*\\) on GET `),
      );
      assert.match(result.stderr, /is this the agent's HTTP port\?/);
      assert.deepEqual(world.consul.callLog(), [], 'the HTTP port served nothing');
    }
  });

  it('when the certificate does not carry CONSUL_TLS_SERVER_NAME, then 69 naming the mismatch; a name it carries works', async () => {
    const wrong = await watcher(world, ['status'], {
      CONSUL_HTTP_ADDR: httpsAddr,
      CONSUL_CACERT: ca.caFile,
      CONSUL_TLS_SERVER_NAME: 'consul.example.org',
    });
    assert.equal(wrong.code, 69, wrong.stderr);
    assert.match(
      wrong.stderr,
      /certificate name mismatch \(ERR_TLS_CERT_ALTNAME_INVALID: Host: consul\.example\.org\. is not in the cert's altnames/,
    );
    assert.match(wrong.stderr, /set CONSUL_TLS_SERVER_NAME/);
    const right = await watcher(world, ['status'], {
      CONSUL_HTTP_ADDR: httpsAddr,
      CONSUL_CACERT: ca.caFile,
      CONSUL_TLS_SERVER_NAME: 'server.dc1.consul:8501',
    });
    assert.equal(right.code, 0, right.stderr);
  });

  it('when CONSUL_HTTP_SSL_VERIFY=false, then it talks TLS unverified and warns that this is never for production', async () => {
    const result = await watcher(world, ['status'], { CONSUL_HTTP_ADDR: httpsAddr, CONSUL_HTTP_SSL_VERIFY: 'false' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /"level":40,[^\n]*CONSUL_HTTP_SSL_VERIFY is false: the Consul agent's certificate is not verified[^\n]*never in production/,
    );
  });

  it('when the agent’s watch runs `watcher handle` with no CONSUL_* variable (as in production), then it reaches the agent over TLS through dns-watcher.json', async () => {
    const configFile = join(dir, 'dns-watcher-handler.json');
    const base = JSON.parse(readFileSync(world.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...base, consulAddress: httpsAddr, consulCaFile: ca.caFile }));
    const node = await world.consul.addNode('api-node-3', '10.0.1.13');
    const registered = await fetch(`${node.agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'st-api', ID: 'st-api', Port: 8080, Check: { CheckID: 'st-api:ttl', TTL: '10m', Status: 'passing' } }),
    });
    assert.equal(registered.status, 200);
    world.consul.clearLogs();
    world.consul.watch({
      type: 'service',
      service: 'st-api',
      args: WATCHER.concat('handle'),
      // The agent's environment holds no CONSUL_* variable: '' reads as unset (watcherCli left some in process.env).
      env: { ...world.env, ...NO_TLS_ENV, CONSUL_HTTP_ADDR: '', ST_DNS_CONFIG: configFile },
      cwd: REPO,
    });
    await waitForPublished(world, ['api-node-1', 'api-node-2', 'api-node-3'], 'the handler over TLS', 45_000);
    await waitFor(() => world.consul.invocations().some((run) => run.exitCode !== null) || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'a handler run to finish',
    });
    const runs = world.consul.invocations().filter((run) => run.exitCode !== null);
    assert.ok(runs.length > 0 && runs.every((run) => run.exitCode === 0), JSON.stringify(runs.map((run) => [run.exitCode, run.output])));
  });

  it('when CONSUL_CACERT cannot be read, then 78 (configuration) naming the file and the variable', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    const result = await watcher(world, ['status'], { CONSUL_HTTP_ADDR: httpsAddr, CONSUL_CACERT: missing });
    assert.equal(result.code, 78, result.stderr);
    assert.ok(result.stderr.includes(`cannot read the Consul CA file ${missing} (CONSUL_CACERT): ENOENT`), result.stderr);
  });
});

describe('the watcher against an agent with verify_incoming', { timeout: 120_000 }, () => {
  let world: WatcherWorld;
  let httpsAddr: string;

  before(async () => {
    world = await startWatcherWorld(
      { minHealthy: 1 },
      {},
      { tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile), ca: ca.caPem, verifyIncoming: true } },
    );
    httpsAddr = world.consul.httpsAddr ?? assert.fail('no https address');
    await registerNodes(world);
  });
  after(() => world.stop());

  it('when no client certificate is given, then 69 and a sentence pointing at CONSUL_CLIENT_CERT', async () => {
    const result = await watcher(world, ['status'], { CONSUL_HTTP_ADDR: httpsAddr, CONSUL_CACERT: ca.caFile });
    assert.equal(result.code, 69, result.stderr);
    assert.match(result.stderr, NO_CLIENT_CERT);
  });

  it('when CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY name a certificate from the CA, then reconcile and status work', async () => {
    const env = {
      CONSUL_HTTP_ADDR: httpsAddr,
      CONSUL_CACERT: ca.caFile,
      CONSUL_CLIENT_CERT: clientFiles.certFile,
      CONSUL_CLIENT_KEY: clientFiles.keyFile,
    };
    const reconcile = await watcher(world, ['reconcile'], env);
    assert.equal(reconcile.code, 0, reconcile.stderr);
    assert.deepEqual([...publishedNodes(world).keys()].sort(), ['api-node-1', 'api-node-2']);
    const status = await watcher(world, ['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.doesNotMatch(status.stderr, /secret file/, 'a 0600 key is not warned about');
  });

  it('when the client key is readable by its group and a user (not root) owns it, then the run works and warns, naming the key file', async () => {
    const key = join(dir, 'group-readable.key');
    copyFileSync(clientFiles.keyFile, key);
    chmodSync(key, 0o640);
    chownSync(key, 12345, 12345);
    const env = { CONSUL_HTTP_ADDR: httpsAddr, CONSUL_CACERT: ca.caFile, CONSUL_CLIENT_CERT: clientFiles.certFile, CONSUL_CLIENT_KEY: key };
    const result = await watcher(world, ['status'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stderr.includes(`secret file ${key} has mode 0640 (owner uid 12345): its group can read it;`), result.stderr);
  });
});

describe('the Sentinel hooks against an agent that serves HTTPS with verify_incoming', { timeout: 120_000 }, () => {
  let world: WatcherWorld;
  let httpsAddr: string;
  let hooksConfig: string;
  const eventKey = 'redis/sentinel/events/mymaster';

  before(async () => {
    world = await startWatcherWorld(
      {},
      {},
      { tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile), ca: ca.caPem, verifyIncoming: true } },
    );
    httpsAddr = world.consul.httpsAddr ?? assert.fail('no https address');
    // Redis and the Sentinels are a closed port: these runs only need Consul.
    const closed = { address: '127.0.0.1', port: 1 };
    hooksConfig = join(dir, 'sentinel-hooks.json');
    writeFileSync(
      hooksConfig,
      JSON.stringify({
        masterName: 'mymaster',
        sentinels: [closed],
        instances: [closed],
        reporter: 'test-host',
        lockFile: join(dir, 'hooks.lock'),
        redisTimeoutMs: 200,
        consulTimeoutMs: 5000,
        convergeWaitMs: 0,
        consulAddress: httpsAddr,
        consulCaFile: ca.caFile,
      }),
    );
  });
  after(() => world.stop());

  const hooks = (argv: string[], env: Record<string, string>): Promise<CliOutcome> =>
    runInProcess(({ stdout, stderr }) => hooksRun(argv, { stdout, stderr, env: { ST_SENTINEL_HOOKS_CONFIG: hooksConfig, ...env } }));
  const clientCert = (): Record<string, string> => ({ CONSUL_CLIENT_CERT: clientFiles.certFile, CONSUL_CLIENT_KEY: clientFiles.keyFile });

  it('when the file names the address and CA and the environment the client certificate, then a notification is recorded in KV', async () => {
    const result = await hooks(['notification', '+sdown', 'master mymaster 127.0.0.1 6379'], clientCert());
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /not recorded/);
    const stored = await fetch(`${world.consul.httpAddr}/v1/kv/${eventKey}?raw`);
    assert.equal(stored.status, 200);
    assert.match(await stored.text(), /"type":"\+sdown"/);
  });

  it('when the CA is another, then reconcile exits 1 (unavailable: Sentinel runs it again) naming the agent and the x509 reason', async () => {
    const result = await hooks(['reconcile'], { ...clientCert(), CONSUL_CACERT: otherCa.caFile });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.logged.at(-1)?.['exitName'], 'transient');
    assert.match(String(result.logged.at(-1)?.['msg']), new RegExp(`^ConsulUnavailableError: ${UNTRUSTED(otherCa.caFile).source}`));
  });

  it('when no client certificate is given, then reconcile exits 1 pointing at CONSUL_CLIENT_CERT', async () => {
    const result = await hooks(['reconcile'], {});
    assert.equal(result.code, 1, result.stderr);
    assert.match(String(result.logged.at(-1)?.['msg']), NO_CLIENT_CERT);
  });

  it('when the client key does not belong to the certificate, or one of the pair is missing, then 2 (configuration) naming the files', async () => {
    const mismatch = await hooks(['reconcile'], { CONSUL_CLIENT_CERT: clientFiles.certFile, CONSUL_CLIENT_KEY: agentFiles.keyFile });
    assert.equal(mismatch.code, 2, mismatch.stderr);
    const message = String(mismatch.logged.at(-1)?.['msg']);
    assert.ok(
      message.startsWith(
        `HooksConfigError: the Consul client certificate ${clientFiles.certFile} (CONSUL_CLIENT_CERT) and key ${agentFiles.keyFile}`,
      ),
      message,
    );
    const half = await hooks(['reconcile'], { CONSUL_CLIENT_CERT: clientFiles.certFile });
    assert.equal(half.code, 2, half.stderr);
    assert.match(String(half.logged.at(-1)?.['msg']), /CONSUL_CLIENT_CERT is set without its pair/);
  });
});
