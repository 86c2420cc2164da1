// Redis over TLS from the API, against real TLS-only redis-servers (port 0, tls-port) and a test CA
// made by openssl: plays use the cache and the rate limit over TLS; a master found through the
// Consul double's DNS is checked against the service name its certificate carries (the address is
// not in it); a certificate the configured CA did not sign leaves Redis down with a warning that
// says so, and plays still succeed; unreadable TLS files stop start-up (exit 78) naming the file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { startConsulDouble, type ConsulDouble } from '../../doubles/consul/double.ts';
import { fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { LOOPBACK, makeTempDir, waitFor } from '../../testkit/processes.ts';
import { pingRedis, startRedis, withAdminConnection, type RedisServer } from '../../testkit/redis.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa, type TestCa } from '../../testkit/tls.ts';

const MASTER_NAME = 'master.redis.service.consul';
const RELAXED = { commandTimeoutMs: 1000, connectTimeoutMs: 2000 };

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let fixed: RedisServer;
let discovered: RedisServer;
let consul: ConsulDouble;
/** What before() started, in case it stopped half-way. */
const started: { stop(): Promise<void> }[] = [];
const nodes: TestNode[] = [];

before(async () => {
  dir = await makeTempDir('st-redis-tls');
  ca = createTestCa(dir);
  otherCa = createTestCa(dir, 'another CA');
  const fixedCert = ca.server('redis-fixed');
  // Names the service only: a client that checked the address (127.0.0.1) would refuse it.
  const serviceCert = ca.server('redis-service', [MASTER_NAME, 'redis.service.consul'], { loopback: false });
  [fixed, discovered, consul] = await Promise.all([
    startRedis({ tls: { caFile: ca.caFile, ...fixedCert } }),
    startRedis({ tls: { caFile: ca.caFile, certFile: serviceCert.certFile, keyFile: serviceCert.keyFile, servername: MASTER_NAME } }),
    startConsulDouble({ checkUpdateIntervalMs: 0 }),
  ]);
  started.push(fixed, discovered, consul);
  await consul.addNode('redis-a', LOOPBACK);
  const response = await fetch(`${consul.node('redis-a').agentAddr}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'redis', ID: 'redis', Tags: ['master'], Address: discovered.host, Port: discovered.port }),
  });
  assert.equal(response.status, 200);
});
after(async () => {
  await Promise.allSettled(nodes.map((node) => node.close()));
  await Promise.allSettled(started.map((server) => server.stop()));
});

async function node(redis: Record<string, unknown>): Promise<TestNode> {
  const started = await startTestNode({ overrides: { redis: { ...RELAXED, ...redis }, health: { probeTimeoutMs: 3000 } } });
  nodes.push(started);
  return started;
}

async function waitForHealth(target: TestNode, pattern: RegExp): Promise<{ status: number; body: string }> {
  return waitFor(
    async () => {
      const health = await fetchDeepHealth(target.baseUrl);
      return pattern.test(health.body) ? health : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: `/health/deep to match ${pattern}` },
  );
}

describe('when the test Redis speaks TLS only', () => {
  it('then a plain TCP client gets no PONG from its port', async () => {
    await assert.rejects(pingRedis(fixed.port, 2000));
  });
});

describe('when st-api reaches Redis at a fixed address over TLS with the right CA', () => {
  it('then health says redis=ok, and a play is cached and counted by the rate limiter in that Redis', async () => {
    const target = await node({ host: fixed.host, port: fixed.port, tls: { ca: ca.caFile } });
    const health = await waitForHealth(target, /redis=ok\([\d.]+ms,master\)/);
    assert.equal(statusApartFromLag(health), 200, health.body);
    await withAdminConnection(fixed, (redis) => redis.flushall());
    const response = await target.play({ contentId: 'tt-demo-0001', device: 'web' }, target.tokenFor('premium-user'));
    assert.equal(response.status, 200);
    const keys = await waitFor(
      async () => {
        const found: string[] = await withAdminConnection(fixed, (redis) => redis.keys('st-api:v1:*'));
        return found.some((key) => key.startsWith('st-api:v1:plays:premium-user:')) && found.some((key) => key.includes(':rights:'))
          ? found
          : undefined;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the play count and the cached rights in Redis' },
    );
    assert.ok(keys.includes('st-api:v1:rights:premium-user:tt-demo-0001'), keys.join(', '));
  });
});

describe('when st-api finds the TLS master through Consul DNS and its certificate names the service, not the address', () => {
  it('then it checks the discovery name (127.0.0.1 is not in the certificate) and uses the master', async () => {
    const target = await node({
      discovery: { name: MASTER_NAME, dnsServer: `${LOOPBACK}:${consul.dnsPort}`, useSrv: true },
      tls: { ca: ca.caFile },
    });
    const health = await waitForHealth(target, /redis=ok\([\d.]+ms,master\)/);
    assert.equal(statusApartFromLag(health), 200, health.body);
    assert.equal((await target.play({ contentId: 'tt-demo-0002', device: 'web' }, target.tokenFor('premium-user'))).status, 200);
    await waitFor(
      async () => (await withAdminConnection(discovered, (redis) => redis.exists('st-api:v1:rights:premium-user:tt-demo-0002'))) === 1,
      {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the rights cached on the discovered master',
      },
    );
  });

  it('then a servername the certificate does not carry is refused: redis=down(certificate:…altname…), plays still answer', async () => {
    const target = await node({
      discovery: { name: MASTER_NAME, dnsServer: `${LOOPBACK}:${consul.dnsPort}`, useSrv: true, retryMaxMs: 500 },
      tls: { ca: ca.caFile, servername: 'redis.elsewhere.example' },
    });
    const health = await waitForHealth(target, /redis=down\(certificate:/);
    assert.equal(health.status, 429, health.body);
    assert.match(health.body, /redis=down\(certificate:err_tls_cert_altname_invalid\)/);
    assert.equal((await target.play({ contentId: 'tt-demo-0001', device: 'web' }, target.tokenFor('premium-user'))).status, 200);
  });
});

describe('when st-api trusts another CA than the one that signed Redis’s certificate', () => {
  it('then health warns redis=down(certificate:…) (never critical), and plays still answer 200 from the catalog', async () => {
    const target = await node({ host: fixed.host, port: fixed.port, tls: { ca: otherCa.caFile } });
    const health = await waitForHealth(target, /redis=down\(certificate:/);
    assert.equal(health.status, 429, health.body);
    // Which verification error depends on the chain the server sends (OpenSSL may add the CA from its trust store).
    assert.match(health.body, /redis=down\(certificate:(?:unable_to_verify_leaf_signature|self_signed_cert_in_chain)\)/);
    for (const contentId of ['tt-demo-0001', 'tt-demo-0002']) {
      assert.equal((await target.play({ contentId, device: 'web' }, target.tokenFor('premium-user'))).status, 200);
    }
  });
});

describe('when Redis wants a client certificate (tls-auth-clients yes)', () => {
  let mutual: RedisServer;
  let client: { certFile: string; keyFile: string };
  before(async () => {
    client = ca.client('st-api-mutual', 'st-api');
    mutual = await startRedis({ tls: { caFile: ca.caFile, ...ca.server('redis-mutual'), authClients: 'yes', client } });
  });
  after(async () => {
    await mutual.stop();
  });

  it('then st-api with cert and key gets redis=ok, and without them redis=down(…certificate…) while plays still answer', async () => {
    const withCert = await node({
      host: mutual.host,
      port: mutual.port,
      tls: { ca: ca.caFile, cert: client.certFile, key: client.keyFile },
    });
    const passing = await waitForHealth(withCert, /redis=ok\([\d.]+ms,master\)/);
    assert.equal(statusApartFromLag(passing), 200, passing.body);

    const without = await node({ host: mutual.host, port: mutual.port, tls: { ca: ca.caFile } });
    // Past the first states (connect, reconnecting), the reason the server gave.
    const warning = await waitForHealth(without, /redis=down\((?!connect|reconnecting)/);
    assert.equal(warning.status, 429, warning.body);
    assert.match(warning.body, /redis=down\(certificate:[a-z0-9_]+\)/);
    assert.equal((await without.play({ contentId: 'tt-demo-0001', device: 'web' }, without.tokenFor('premium-user'))).status, 200);
  });
});

describe('when redis.tls names files', () => {
  it('then an unreadable CA or key is a configuration error naming the file', () => {
    const raw = {
      ...embeddedDemo().rawConfig,
      redis: { host: '127.0.0.1', tls: { ca: join(dir, 'missing-ca.pem'), cert: join(dir, 'missing.crt'), key: join(dir, 'missing.key') } },
    };
    assert.throws(
      () => parseConfig(raw, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`redis\\.tls\\.ca: cannot read ${join(dir, 'missing-ca.pem')} \\(ENOENT\\)`));
        assert.match(error.message, /redis\.tls\.key: cannot read \S+missing\.key \(ENOENT\)/);
        return true;
      },
    );
  });

  it('then a client certificate without its key is refused', () => {
    const base = embeddedDemo().rawConfig;
    assert.throws(
      () => parseConfig({ ...base, redis: { host: '127.0.0.1', tls: { ca: ca.caFile, cert: ca.caFile } } }, {}),
      /redis\.tls\.key: give cert and key together/,
    );
  });

  it('then st-api exits 78 naming the unreadable file, and warns about a key file others may read', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    const clientCert = ca.client('st-api-client', 'st-api');
    chmodSync(clientCert.keyFile, 0o644);
    const run = async (tls: Record<string, unknown>): Promise<{ code: number | null; output: string }> => {
      const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        file,
        JSON.stringify({ ...embeddedDemo().rawConfig, logLevel: 'info', redis: { host: fixed.host, port: fixed.port, ...RELAXED, tls } }),
      );
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'api', 'main.ts')], {
        env: { ...process.env, ST_API_CONFIG: file, ST_API_PORT: '0', ST_API_HOST: '127.0.0.1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = once(child, 'exit') as Promise<[number | null]>;
      // A node that starts is stopped once it has said what it has to say.
      const listening = waitFor(() => (/"msg":"st-api listening"/.test(output) ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: 'st-api to listen',
      }).then(() => child.kill('SIGTERM'));
      const [code] = await Promise.race([exited, listening.then(() => exited)]);
      return { code, output };
    };
    const refused = await run({ ca: missing });
    assert.equal(refused.code, 78);
    assert.match(refused.output, new RegExp(`redis\\.tls\\.ca: cannot read ${missing} \\(ENOENT\\)`));

    const loose = await run({ ca: ca.caFile, cert: clientCert.certFile, key: clientCert.keyFile });
    assert.ok(loose.output.includes(`"msg":"secret file ${clientCert.keyFile} has mode 0644 (owner uid `), loose.output);
    assert.match(loose.output, /every user can read it; chmod 600 it"/);
    assert.match(loose.output, new RegExp(`"mode":"0644"`));
    assert.doesNotMatch(loose.output, new RegExp(readFileSync(clientCert.keyFile, 'utf8').split('\n')[1] ?? 'unused'));
  });
});
