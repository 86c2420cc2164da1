// The double's HTTPS listener, as a client of an agent with `tls.https` sees it: the API over TLS
// with the agent's certificate beside the plain HTTP port, `verify_incoming` refusing a client
// without a certificate from the CA, and `npm run double:consul` taking the same settings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { makeTempDir } from '../../testkit/processes.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../testkit/tls.ts';
import { startConsulDouble, type ConsulDouble } from './double.ts';

/** GET over HTTPS with exactly these TLS options: the status, or the error's code. */
function get(url: string, tls: { ca?: string; cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { ...tls, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

let ca: TestCa;
let agentFiles: CertificateFiles;
let clientFiles: CertificateFiles;
const pem = (file: string): string => readFileSync(file, 'utf8');

before(async () => {
  const dir = await makeTempDir('consul-double-tls');
  ca = createTestCa(dir);
  agentFiles = ca.server('consul-agent', ['server.dc1.consul']);
  clientFiles = ca.client('consul-client', 'st-api-watcher');
});

describe('the Consul double with tls', { timeout: 60_000 }, () => {
  let consul: ConsulDouble;
  before(async () => {
    consul = await startConsulDouble({ tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile) } });
  });
  after(() => consul.stop());

  it('when a client trusts the CA, then every agent answers its API over HTTPS, and its HTTP port stays', async () => {
    assert.match(consul.httpsAddr ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await get(`${consul.httpsAddr}/v1/agent/self`, { ca: ca.caPem }), '200');
    const node = await consul.addNode('api-node-1', '10.0.1.11');
    assert.match(node.httpsAddr ?? '', /^https:/);
    assert.notEqual(node.httpsAddr, consul.httpsAddr);
    assert.equal(await get(`${node.httpsAddr}/v1/agent/self`, { ca: ca.caPem }), '200');
    assert.equal((await fetch(`${consul.httpAddr}/v1/agent/self`)).status, 200);
  });

  it('when a client does not trust the CA, then the handshake fails on its side', async () => {
    assert.equal(await get(`${consul.httpsAddr}/v1/agent/self`, {}), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

describe('the Consul double with tls and verifyIncoming', { timeout: 60_000 }, () => {
  let consul: ConsulDouble;
  before(async () => {
    consul = await startConsulDouble({
      tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile), ca: ca.caPem, verifyIncoming: true },
    });
  });
  after(() => consul.stop());

  it('when the client presents a certificate from the CA, then it is answered', async () => {
    const answer = await get(`${consul.httpsAddr}/v1/agent/self`, {
      ca: ca.caPem,
      cert: pem(clientFiles.certFile),
      key: pem(clientFiles.keyFile),
    });
    assert.equal(answer, '200');
  });

  it('when the client presents none, or one from another CA, then no request is answered', async () => {
    const other = createTestCa(ca.dir, 'another CA').client('stranger', 'stranger');
    for (const credentials of [{}, { cert: pem(other.certFile), key: pem(other.keyFile) }]) {
      const answer = await get(`${consul.httpsAddr}/v1/agent/self`, { ca: ca.caPem, ...credentials });
      // TLS 1.3: the refusal is the agent's alert, or a reset when the request was already sent.
      assert.match(answer, /^(ERR_SSL_\w*ALERT\w*|ECONNRESET)$/);
    }
  });

  it('when verifyIncoming has no CA, then the double refuses to start', async () => {
    await assert.rejects(
      startConsulDouble({ tls: { cert: pem(agentFiles.certFile), key: pem(agentFiles.keyFile), verifyIncoming: true } }),
      /verifyIncoming needs tls\.ca/,
    );
  });
});

describe('npm run double:consul with --tls-cert, --tls-key, --tls-ca, --verify-incoming', { timeout: 60_000 }, () => {
  it('when started with them, then it prints its HTTPS address and serves TLS with client certificates required', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'main.ts'),
        '--tls-cert',
        agentFiles.certFile,
        '--tls-key',
        agentFiles.keyFile,
        '--tls-ca',
        ca.caFile,
        '--verify-incoming',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      const [line] = (await Promise.race([
        once(lines, 'line'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no line within 30 s')), 30_000).unref()),
      ])) as [string];
      const httpsAddr = / https (https:\/\/127\.0\.0\.1:\d+) \(verify_incoming\) /.exec(line)?.[1];
      assert.ok(httpsAddr !== undefined, line);
      assert.equal(
        await get(`${httpsAddr}/v1/agent/self`, { ca: ca.caPem, cert: pem(clientFiles.certFile), key: pem(clientFiles.keyFile) }),
        '200',
      );
      assert.match(await get(`${httpsAddr}/v1/agent/self`, { ca: ca.caPem }), /^(ERR_SSL_\w*ALERT\w*|ECONNRESET)$/);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('when --verify-incoming comes without --tls-ca, then it exits 2 with a sentence', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'main.ts'),
        '--tls-cert',
        agentFiles.certFile,
        '--tls-key',
        agentFiles.keyFile,
        '--verify-incoming',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(stderr, /--verify-incoming needs --tls-ca/);
  });
});
