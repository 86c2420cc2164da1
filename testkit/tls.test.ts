// The TLS suites trust this CA to make real certificates: prove a server certificate verifies
// against its own CA under each name it was issued for, and against nothing else.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { makeTempDir } from './processes.ts';
import { createTestCa, type CertificateFiles } from './tls.ts';

async function handshake(files: CertificateFiles, ca: string, servername: string): Promise<string> {
  const server = createServer({ cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) }, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, ca, servername, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode}`));
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end();
    });
  } finally {
    server.close();
  }
}

describe('the test CA (testkit/tls.ts)', () => {
  it('when a server certificate is issued for a service name, then it verifies under that name and loopback, only against its own CA', async () => {
    const dir = await makeTempDir('test-ca');
    const ca = createTestCa(dir);
    const other = createTestCa(dir, 'another CA');
    for (const keyType of ['ec', 'rsa'] as const) {
      const files = ca.server(`redis-${keyType}`, ['master.redis.service.consul'], { keyType });
      assert.equal(await handshake(files, ca.caPem, 'master.redis.service.consul'), '200');
      assert.equal(await handshake(files, ca.caPem, 'localhost'), '200');
      assert.equal(await handshake(files, ca.caPem, 'replica.redis.service.consul'), 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.equal(await handshake(files, other.caPem, 'localhost'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assert.equal(statSync(files.keyFile).mode & 0o077, 0, 'keys are private to their owner');
    }
    const client = ca.client('watcher', 'watcher');
    assert.notEqual(client.serial, ca.server('again').serial, 'every certificate has its own serial');
  });
});
