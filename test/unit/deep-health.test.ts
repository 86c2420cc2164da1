import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFailure } from '../../api/health/deep-health.ts';

describe('describeFailure (what a probe failure says in the Consul UI)', () => {
  it('when the error has a system code, then the code is shown in lower case', () => {
    assert.equal(
      describeFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })),
      'error(econnrefused)',
    );
  });
  it('when ioredis gives up on a command, then it says timeout, not a bare error', () => {
    assert.equal(describeFailure(new Error('Command timed out')), 'timeout(command)');
  });
  it('when the error says anything else, then no message text reaches the check output', () => {
    assert.equal(describeFailure(new Error('password=hunter2 in SELECT …')), 'error');
    assert.equal(describeFailure('a string'), 'error');
  });
  it('when TLS verification fails, then it says which check failed (the CA or the name), whichever client reported it', () => {
    const node = (code: string, message: string): Error => Object.assign(new Error(message), { code });
    // Node's own errors (ioredis, fetch): the verification code.
    assert.equal(
      describeFailure(node('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')),
      'error(tls:certificate-untrusted)',
    );
    assert.equal(
      describeFailure(node('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames")),
      'error(tls:certificate-name-mismatch)',
    );
    assert.equal(describeFailure(node('CERT_HAS_EXPIRED', 'certificate has expired')), 'error(tls:certificate-expired)');
    // mysql2 replaces the code with HANDSHAKE_SSL_ERROR and keeps Node's message.
    assert.equal(
      describeFailure(node('HANDSHAKE_SSL_ERROR', 'self-signed certificate in certificate chain')),
      'error(tls:certificate-untrusted)',
    );
    assert.equal(
      describeFailure(
        node(
          'HANDSHAKE_SSL_ERROR',
          "Hostname/IP does not match certificate's altnames: Host: db.example. is not in the cert's altnames: DNS:localhost",
        ),
      ),
      'error(tls:certificate-name-mismatch)',
    );
    assert.equal(describeFailure(node('HANDSHAKE_SSL_ERROR', 'wrong version number')), 'error(tls:handshake-failed)');
    assert.equal(
      describeFailure(node('HANDSHAKE_NO_SSL_SUPPORT', 'Server does not support secure connection')),
      'error(tls:not-offered-by-server)',
    );
  });
});
