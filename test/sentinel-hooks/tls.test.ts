// The hooks over TLS: resp.ts against a TLS-only redis-server (the CA and the name checked), then
// the hooks against TLS-only Redis ×3 and Sentinel ×3 (replication and Sentinel's own links over
// TLS too) whose one certificate names the service, not the 127.0.0.X addresses Sentinel hands
// out: reconcile reads ROLE and the Sentinels over TLS, and a kill -9 failover reaches Consul DNS.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../sentinel-hooks/cli.ts';
import { command, NoReplyError } from '../../sentinel-hooks/resp.ts';
import { runInProcess } from '../../testkit/in-process-cli.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { startRedis, type RedisServer, type RedisTlsFiles } from '../../testkit/redis.ts';
import { createTestCa, type TestCa } from '../../testkit/tls.ts';
import { startHooksSystem, type HooksSystem } from './system.ts';

const SERVICE_NAME = 'redis.service.consul';

let ca: TestCa;
let otherCa: TestCa;
let tls: RedisTlsFiles;

before(async () => {
  const dir = await makeTempDir('st-hooks-tls');
  ca = createTestCa(dir);
  otherCa = createTestCa(dir, 'another CA');
  // No loopback in it: a client that checked the address it was handed would refuse it.
  const cert = ca.server('redis-hosts', [SERVICE_NAME, `master.${SERVICE_NAME}`], { loopback: false });
  tls = { caFile: ca.caFile, certFile: cert.certFile, keyFile: cert.keyFile, servername: SERVICE_NAME };
});

describe('when resp.ts talks to a TLS-only redis-server', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ tls });
  });
  after(async () => {
    await server.stop();
  });
  const ask = (options: { ca?: string; servername?: string; plain?: boolean }) =>
    command(server.host, server.port, ['PING'], {
      timeoutMs: 3000,
      ...(options.plain === true
        ? {}
        : { tls: { ca: options.ca ?? ca.caPem, ...(options.servername === undefined ? {} : { servername: options.servername }) } }),
    });

  it('then with the CA and the name the certificate carries, PING answers PONG', async () => {
    assert.equal(await ask({ servername: SERVICE_NAME }), 'PONG');
  });

  it('then another CA is refused before anything is sent, as a NoReplyError naming the certificate problem', async () => {
    await assert.rejects(ask({ ca: otherCa.caPem, servername: SERVICE_NAME }), (error: unknown) => {
      assert.ok(error instanceof NoReplyError);
      assert.match(error.message, /^(?:UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
      return true;
    });
  });

  it('then without servername the address is checked, and the certificate (service names only) is refused', async () => {
    await assert.rejects(ask({}), { name: 'NoReplyError', message: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('then a plain client gets no reply', async () => {
    await assert.rejects(ask({ plain: true }), { name: 'NoReplyError' });
  });
});

describe('when the hooks run against TLS-only Redis and Sentinels', { timeout: 240_000 }, () => {
  let system: HooksSystem;
  before(async () => {
    system = await startHooksSystem({ reconcilePeriodMs: 2000, tls });
    await system.cluster.waitStable(60_000);
  });
  after(async () => {
    await system?.stop();
  });

  it('then reconcile reads ROLE and the Sentinels over TLS: DNS answers the master, replicas are in sync over TLS', async () => {
    assert.deepEqual(await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile']))), [0, 0, 0]);
    await waitFor(
      async () =>
        (await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile'])))).every((c) => c === 0) &&
        (await system.registrations()).every((r) => r.health === 'passing'),
      { timeoutMs: 30_000, intervalMs: 300, what: 'every instance passing' },
    );
    assert.deepEqual(await system.dnsMasters(), ['127.0.0.2']);
    const registrations = await system.registrations();
    assert.match(registrations.find((r) => r.address === '127.0.0.2')?.output ?? '', /^tag=master, ROLE=master/);
    for (const replica of ['127.0.0.3', '127.0.0.4']) {
      assert.match(
        registrations.find((r) => r.address === replica)?.output ?? '',
        /^tag=replica, ROLE=slave \(master 127\.0\.0\.2:\d+, link connected\)/,
      );
    }
  });

  it('then an unreadable tls.ca exits 2 naming the file, and a client key others may read is warned about (the run still works)', async () => {
    const config = JSON.parse(readFileSync(join(system.dir, 'host-1.json'), 'utf8')) as Record<string, unknown>;
    const reconcileWith = async (tlsConfig: Record<string, unknown>) => {
      const file = join(system.dir, `host-1-variant-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify({ ...config, tls: tlsConfig }));
      return await runInProcess((io) => run(['reconcile'], { ...io, env: system.env(1, { ST_SENTINEL_HOOKS_CONFIG: file }) }));
    };
    const missing = join(system.dir, 'no-such-ca.pem');
    const refused = await reconcileWith({ ca: missing, servername: SERVICE_NAME });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`tls\\.ca ${missing} cannot be read \\(ENOENT\\)`));

    const client = ca.client('hooks-client', 'st-api-sentinel-hooks');
    chmodSync(client.keyFile, 0o640);
    chownSync(client.keyFile, 12345, 12345);
    const loose = await reconcileWith({ ca: ca.caFile, servername: SERVICE_NAME, cert: client.certFile, key: client.keyFile });
    assert.equal(loose.code, 0, loose.stderr);
    assert.ok(
      loose.logged.some(
        (line) =>
          line['file'] === client.keyFile &&
          line['mode'] === '0640' &&
          String(line['msg']).startsWith(`secret file ${client.keyFile} has mode 0640 (owner uid 12345): its group can read it;`),
      ),
      loose.stderr,
    );
  });

  it('then after the master is killed with -9, the Sentinels fail over and DNS answers the new master', async () => {
    const old = system.cluster.redis.find((r) => r.ip === '127.0.0.2');
    assert.ok(old);
    system.startReconcileTimer();
    await old.kill();
    const newMaster = await waitFor(
      async () => {
        const addrs = await system.cluster.masterAddrs();
        return addrs.every((a) => a !== null && a !== old.key && a === addrs[0]) ? addrs[0] : null;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the Sentinels to agree on a new master' },
    );
    await waitFor(
      async () => {
        const dns = await system.dnsMasters();
        return dns.length === 1 && dns[0] === newMaster.split(':')[0];
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `DNS to answer ${newMaster}` },
    );
    const oldRegistration = (await system.registrations()).find((r) => r.address === '127.0.0.2');
    assert.ok(oldRegistration !== undefined && !(oldRegistration.tags.includes('master') && oldRegistration.health === 'passing'));
  });
});
