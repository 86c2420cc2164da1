// The public port over HTTPS (issue #12): what a client sees of the TLS side (versions, chain,
// ALPN), what start-up does with bad certificate files, and how /health/deep and /metrics report the
// serving certificate's expiry.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type ConnectionOptions } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { httpsRequest } from '../../testkit/https-client.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../testkit/tls.ts';
import { API_MAIN } from './st-api-process.ts';

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let serving: CertificateFiles;
let node: TestNode;

before(async () => {
  dir = await makeTempDir('st-https');
  ca = createTestCa(dir);
  mkdirSync(join(dir, 'other'));
  otherCa = createTestCa(join(dir, 'other'), 'another test CA');
  serving = ca.server('serving', ['play.example.com']);
  node = await startTestNode({ tls: { certFile: serving.certFile, keyFile: serving.keyFile } });
});
after(async () => {
  await node?.close();
});

/** A TLS handshake with `options`; its negotiated protocol and ALPN, or the error code. */
function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ protocol: string | null; alpn: string | false | null } | { error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ...options }, () => {
      resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

/** What a TLS 1.1 client offers; OpenSSL 3 needs security level 0 to offer it at all. */
const TLS_1_1_CLIENT: ConnectionOptions = {
  minVersion: 'TLSv1',
  maxVersion: 'TLSv1.1',
  ciphers: 'DEFAULT@SECLEVEL=0',
  rejectUnauthorized: false,
};

describe('when the public port serves HTTPS', () => {
  it('then TLS 1.2 and 1.3 clients are served and a TLS 1.1 client is refused by the server', async () => {
    const port = Number(new URL(node.baseUrl).port);
    assert.deepEqual(await handshake(port, { ca: ca.caPem, maxVersion: 'TLSv1.2' }), { protocol: 'TLSv1.2', alpn: false });
    assert.deepEqual(await handshake(port, { ca: ca.caPem, minVersion: 'TLSv1.3' }), { protocol: 'TLSv1.3', alpn: false });
    assert.deepEqual(await handshake(port, TLS_1_1_CLIENT), { error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });

    // The same client does complete a TLS 1.1 handshake with a server that allows it: the refusal above is st-api's.
    const permissive = createServer(
      {
        cert: readFileSync(serving.certFile),
        key: readFileSync(serving.keyFile),
        minVersion: 'TLSv1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      },
      (socket) => socket.end(),
    );
    permissive.listen(0, '127.0.0.1');
    await once(permissive, 'listening');
    try {
      const address = permissive.address();
      assert.ok(address !== null && typeof address === 'object');
      assert.deepEqual(await handshake(address.port, TLS_1_1_CLIENT), { protocol: 'TLSv1.1', alpn: false });
    } finally {
      permissive.close();
    }
  });

  it('then the chain verifies with the test CA under the names and address it was issued for, and not with another CA', async () => {
    const port = Number(new URL(node.baseUrl).port);
    assert.ok('protocol' in (await handshake(port, { ca: ca.caPem, servername: 'play.example.com' })));
    assert.ok('protocol' in (await handshake(port, { ca: ca.caPem })), 'verified against the IP SAN 127.0.0.1');
    assert.deepEqual(await handshake(port, { ca: otherCa.caPem, servername: 'play.example.com' }), {
      error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    assert.deepEqual(await handshake(port, { ca: ca.caPem, servername: 'other.example.com' }), { error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('then a client offering HTTP/2 and HTTP/1.1 is given HTTP/1.1, and a play is answered over it', async () => {
    const port = Number(new URL(node.baseUrl).port);
    assert.deepEqual(await handshake(port, { ca: ca.caPem, ALPNProtocols: ['h2', 'http/1.1'] }), {
      protocol: 'TLSv1.3',
      alpn: 'http/1.1',
    });
    const play = await httpsRequest(`${node.baseUrl}/v1/playback-urls`, {
      ca: ca.caPem,
      method: 'POST',
      headers: { authorization: `Bearer ${node.tokenFor('demo-user')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
    });
    assert.equal(play.status, 200, play.body);
    assert.equal(play.serial, serving.serial);
    assert.match((JSON.parse(play.body) as { url: string }).url, /^https:\/\//);
  });

  it('then /health/deep says certificate=ok(<days>) and /metrics carries its notAfter; a plain-HTTP node has neither', async () => {
    const health = await httpsRequest(`${node.baseUrl}/health/deep`, { ca: ca.caPem });
    assert.equal(health.status, 200, health.body);
    // testkit/tls.ts issues for 30 days: 29 whole days and some hours are left.
    assert.match(health.body, /^ok .* certificate=ok\((29|30)d\) /);
    const metrics = await httpsRequest(`${node.baseUrl}/metrics`, { ca: ca.caPem });
    const notAfter = /^st_api_tls_certificate_expiry_timestamp_seconds (\d+)$/m.exec(metrics.body)?.[1];
    assert.equal(Number(notAfter), Math.floor((node.certificate?.current().notAfter.getTime() ?? 0) / 1000));
    assert.ok(Math.abs(Number(notAfter) * 1000 - (Date.now() + 30 * 86_400_000)) < 3600_000, `${notAfter} is 30 days away`);

    const plain = await startTestNode();
    try {
      assert.ok(plain.baseUrl.startsWith('http://'));
      assert.doesNotMatch(await (await fetch(`${plain.baseUrl}/health/deep`)).text(), /certificate=/);
      assert.doesNotMatch(await (await fetch(`${plain.baseUrl}/metrics`)).text(), /st_api_tls_certificate_expiry/);
    } finally {
      await plain.close();
    }
  });

  it('then a certificate within health.keyExpiryWarningDays makes the node warn, and an expired one critical', async () => {
    const soon = ca.server('soon', [], { days: 5 });
    const warning = await startTestNode({ tls: { certFile: soon.certFile, keyFile: soon.keyFile } });
    try {
      const health = await httpsRequest(`${warning.baseUrl}/health/deep`, { ca: ca.caPem });
      assert.equal(health.status, 429, health.body);
      assert.match(health.body, /^warn .* certificate=expiring\([45]d\) /);
    } finally {
      await warning.close();
    }
    // The same 5-day certificate seen 6 days later (the node's clock): expired, critical.
    const later = Date.now() + 6 * 86_400_000;
    const expired = await startTestNode({ tls: { certFile: soon.certFile, keyFile: soon.keyFile }, now: () => later });
    try {
      const health = await httpsRequest(`${expired.baseUrl}/health/deep`, { ca: ca.caPem });
      assert.equal(health.status, 503, health.body);
      assert.match(health.body, /^fail .* certificate=expired /);
    } finally {
      await expired.close();
    }
  });
});

describe('when st-api starts with listen.tls', () => {
  /** Runs api/main.ts with the demo configuration and `tls`; resolves with its exit code and output once it exits or listens. */
  async function start(
    tls: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ): Promise<{ code: number | null; output: string }> {
    const demo = embeddedDemo();
    const configFile = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({ ...demo.rawConfig, listen: { host: '127.0.0.1', port: 0, tls }, logLevel: 'info', ...extra }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, ST_API_CONFIG: configFile };
    delete env['ST_API_HOST'];
    delete env['ST_API_PORT'];
    const child = spawn(process.execPath, ['--import', 'tsx', API_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    let code: number | null | undefined;
    void exited.then((value) => (code = value));
    await waitFor(() => code !== undefined || output.includes('"msg":"st-api listening"'), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'st-api to exit or listen',
    });
    if (code === undefined) {
      child.kill('SIGKILL');
      await exited;
      return { code: null, output };
    }
    return { code, output };
  }

  it('then an unreadable file, a certificate that does not parse or a key that does not match stops it with exit 78 naming the file, never its contents', async () => {
    const garbage = join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate, but a secret-looking line hunter2\n');
    const stranger = ca.server('stranger');
    const cases = [
      {
        tls: { certFile: join(dir, 'missing.crt'), keyFile: serving.keyFile },
        says: `cannot read the certificate file ${join(dir, 'missing.crt')} (ENOENT)`,
      },
      {
        tls: { certFile: serving.certFile, keyFile: join(dir, 'missing.key') },
        says: `cannot read the key file ${join(dir, 'missing.key')} (ENOENT)`,
      },
      { tls: { certFile: garbage, keyFile: serving.keyFile }, says: `the certificate file ${garbage} holds no PEM certificate` },
      { tls: { certFile: serving.certFile, keyFile: garbage }, says: `the key file ${garbage} does not hold a PEM private key` },
      {
        tls: { certFile: serving.certFile, keyFile: stranger.keyFile },
        says: `the key in ${stranger.keyFile} does not match the certificate in ${serving.certFile}`,
      },
    ];
    for (const { tls, says } of cases) {
      const { code, output } = await start(tls);
      assert.equal(code, 78, output);
      assert.ok(output.includes(`listen.tls: ${says}`), `${says}\n--- output ---\n${output}`);
      assert.doesNotMatch(output, /BEGIN|hunter2/);
    }
  });

  it('then a key file (or a {"file"} secret) that others can read is served with a warning naming the file and its mode', async () => {
    const looseDir = join(dir, 'loose');
    mkdirSync(looseDir);
    const keyFile = join(looseDir, 'serving.key');
    copyFileSync(serving.keyFile, keyFile);
    chmodSync(keyFile, 0o640);
    // Group-readable warns only when the owner is not root (a root-owned 0640 is a deliberate group grant).
    chownSync(keyFile, 12345, 12345);
    const secretFile = join(looseDir, 'manifest-key');
    writeFileSync(secretFile, 'm'.repeat(40));
    chmodSync(secretFile, 0o644);
    const { code, output } = await start(
      { certFile: serving.certFile, keyFile },
      { manifests: { publicUrl: 'https://play.example.com', keys: [{ id: 'm1', active: true, secret: { file: secretFile } }] } },
    );
    assert.equal(code, null, `it listens: ${output}`);
    const groupFix = 'chmod 600 it, or chown it to root to share it with the group on purpose';
    assert.ok(
      output.includes(`"msg":"secret file ${keyFile} has mode 0640 (owner uid 12345): its group can read it; ${groupFix}"`),
      output,
    );
    assert.ok(
      output.includes(
        `"msg":"secret file ${secretFile} has mode 0644 (owner uid ${process.getuid?.() ?? 0}): every user can read it; chmod 600 it"`,
      ),
      output,
    );
    assert.match(output, /"scheme":"https"/);
    assert.doesNotMatch(output, /mmmmmmmm|BEGIN/);
  });
});
