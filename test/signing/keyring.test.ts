import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { createKeyring } from '../../api/signing/keyring.ts';
import { createSigner, opensslHmacHex, param, playbackRequest, testKeys } from './helpers.ts';

/** A key entry for the validation cases: only id, active and (a number for) material matter there. */
const key = (id: string, active: boolean, material: number) => ({ id, active, material });

describe('keyring validation', () => {
  test('when exactly one key is active, then it is the signing key and its notAfter is exposed', () => {
    const notAfter = new Date('2027-01-01T00:00:00Z');
    const ring = createKeyring([
      { id: 'a', active: false, material: 1 },
      { id: 'b', active: true, material: 2, notAfter },
    ]);
    assert.equal(ring.active.material, 2);
    assert.deepEqual(ring.activeInfo, { id: 'b', notAfter });
    assert.equal(ring.keys.length, 2);
  });

  test('when no key is active, then the error says so and lists the ids', () => {
    assert.throws(() => createKeyring([key('a', false, 1)]), /no active key \(keys: a\)/);
  });

  test('when two keys are active, then the error names both', () => {
    assert.throws(() => createKeyring([key('a', true, 1), key('b', true, 2)]), /2 active keys \(a, b\)/);
  });

  test('when ids repeat, are empty, or there are no keys, then the error names the problem', () => {
    assert.throws(() => createKeyring([key('a', true, 1), key('a', false, 2)]), /duplicate key id "a"/);
    assert.throws(() => createKeyring([key('', true, 1)]), /empty id/);
    assert.throws(() => createKeyring([]), /no keys/);
  });
});

const OLD = '00112233445566778899aabbccddeeff';
const NEW = 'ffeeddccbbaa99887766554433221100';

/** An Akamai edge during rotation: token key plus transition key, either may verify. */
function edgeAccepts(trustedKeys: string[], token: string): boolean {
  const at = token.lastIndexOf('~hmac=');
  const body = token.slice(0, at);
  const hmac = token.slice(at + '~hmac='.length);
  return trustedKeys.some((key) => opensslHmacHex('sha256', key, body) === hmac);
}

describe('key rotation without downtime', () => {
  const akamai = (activeId: 'old' | 'new') =>
    createSigner({
      type: 'akamai',
      keys: [
        { id: 'old', active: activeId === 'old', secret: OLD },
        { id: 'new', active: activeId === 'new', secret: NEW },
      ],
    });

  test('when active flips from old to new, then new tokens use the new key and tokens from before the flip still verify at an edge trusting both', () => {
    const before = param(akamai('old').sign(playbackRequest()), '__token__');
    const after = param(akamai('new').sign(playbackRequest()), '__token__');
    assert.equal(akamai('new').activeKey.id, 'new');
    assert.ok(edgeAccepts([OLD], before) && !edgeAccepts([NEW], before));
    assert.ok(edgeAccepts([NEW], after) && !edgeAccepts([OLD], after));
    assert.ok(edgeAccepts([NEW, OLD], before) && edgeAccepts([NEW, OLD], after));
  });

  test('when a CloudFront key group holds both keys and active flips, then Key-Pair-Id and signing key flip together', () => {
    const cloudfront = (activeId: 'KRSA' | 'KEC') =>
      createSigner({
        type: 'cloudfront',
        keys: [
          { id: 'KRSA', active: activeId === 'KRSA', privateKey: testKeys['test-rsa-key.pem'] },
          { id: 'KEC', active: activeId === 'KEC', privateKey: testKeys['test-ecdsa-key.pem'] },
        ],
      });
    const publicKeyFor: Record<string, string> = { KRSA: testKeys['test-rsa-key-public.pem'], KEC: testKeys['test-ecdsa-key-public.pem'] };
    const b64 = (s: string) => Buffer.from(s.replaceAll('-', '+').replaceAll('_', '=').replaceAll('~', '/'), 'base64');
    for (const id of ['KRSA', 'KEC'] as const) {
      const url = cloudfront(id).sign(playbackRequest());
      assert.equal(param(url, 'Key-Pair-Id'), id);
      const publicKey = createPublicKey(publicKeyFor[id] ?? '');
      assert.ok(verify('sha256', b64(param(url, 'Policy')), publicKey, b64(param(url, 'Signature'))), id);
    }
  });
});
