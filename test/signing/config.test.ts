import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { createSigner, parseSignerConfig, playbackRequest, SignerConfigError, testKeys, type SignerConfigInput } from './helpers.ts';

const HEX = '00112233445566778899aabbccddeeff';

/** Asserts createSigner rejects the config with `pattern` and never echoes `secret`. */
function assertRejects(config: unknown, pattern: RegExp, secret?: string): void {
  assert.throws(
    () => createSigner(config as SignerConfigInput),
    (error: unknown) => {
      assert.ok(error instanceof SignerConfigError, String(error));
      assert.match(error.message, pattern);
      if (secret !== undefined) assert.ok(!error.message.includes(secret), `error leaks the secret: ${error.message}`);
      return true;
    },
  );
}

describe('signer config: defaults', () => {
  test('when only type and keys are given, then each scheme gets its documented defaults', () => {
    const cloudfront = parseSignerConfig({
      type: 'cloudfront',
      keys: [{ id: 'K1', active: true, privateKey: testKeys['test-rsa-key.pem'] }],
    });
    assert.ok(cloudfront.type === 'cloudfront');
    assert.equal(cloudfront.hashAlgorithm, 'SHA256');
    assert.equal(cloudfront.bindClientIp, false);

    const akamai = parseSignerConfig({ type: 'akamai', keys: [{ id: 'a', active: true, secret: HEX }] });
    assert.ok(akamai.type === 'akamai');
    assert.deepEqual([akamai.tokenName, akamai.algorithm, akamai.bindClientIp], ['__token__', 'sha256', false]);

    const nginx = parseSignerConfig({ type: 'nginx', keys: [{ id: 'n', active: true, secret: 's' }] });
    assert.ok(nginx.type === 'nginx');
    assert.deepEqual([nginx.expression, nginx.hashParam, nginx.expiresParam], ['$secure_link_expires$scope $secret', 'md5', 'expires']);

    const wowza = parseSignerConfig({ type: 'wowza', keys: [{ id: 'w', active: true, secret: 's' }] });
    assert.ok(wowza.type === 'wowza');
    assert.deepEqual([wowza.prefix, wowza.hashAlgorithm, wowza.bindClientIp], ['wowzatoken', 'SHA256', false]);
  });

  test('when notAfter is an ISO timestamp, then the active key exposes it as a Date', () => {
    const signer = createSigner({ type: 'wowza', keys: [{ id: 'w', active: true, secret: 's', notAfter: '2027-06-01T00:00:00Z' }] });
    assert.deepEqual(signer.activeKey, { id: 'w', notAfter: new Date('2027-06-01T00:00:00Z') });
  });
});

describe('signer config: every scheme signs through createSigner', () => {
  const configs: SignerConfigInput[] = [
    { type: 'cloudfront', keys: [{ id: 'K1', active: true, privateKey: testKeys['test-rsa-key-pkcs1.pem'] }] },
    { type: 'akamai', keys: [{ id: 'a', active: true, secret: HEX }] },
    { type: 'nginx', keys: [{ id: 'n', active: true, secret: 's' }] },
    { type: 'wowza', keys: [{ id: 'w', active: true, secret: 's' }] },
  ];
  for (const config of configs) {
    test(`when a ${config.type} signer signs a percent-encoded manifest, then the URL starts with origin + manifestPath + "?" unchanged`, () => {
      const signer = createSigner(config);
      assert.equal(signer.scheme, config.type);
      const request = playbackRequest({ manifestPath: '/vod/t%C3%A9-1/master.m3u8', scopePath: '/vod/t%C3%A9-1/' });
      assert.ok(signer.sign(request).startsWith('https://cdn.example.com/vod/t%C3%A9-1/master.m3u8?'));
    });
  }
});

describe('signer config: rejected configs', () => {
  test('when a CloudFront private key does not parse, then the error names the field and not the key', () => {
    const garbage = '-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n';
    assertRejects(
      { type: 'cloudfront', keys: [{ id: 'K1', active: true, privateKey: garbage }] },
      /keys\.0\.privateKey: .*not a parseable PEM/,
      'TOPSECRETMATERIAL',
    );
  });

  test('when a CloudFront key is DSA or a public key, then the error says only RSA/ECDSA private keys work', () => {
    const { privateKey } = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 });
    assertRejects(
      {
        type: 'cloudfront',
        keys: [{ id: 'K1', active: true, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }],
      },
      /RSA or ECDSA P-256/,
    );
    assertRejects(
      { type: 'cloudfront', keys: [{ id: 'K1', active: true, privateKey: testKeys['test-rsa-key-public.pem'] }] },
      /privateKey/,
    );
  });

  test('when a CloudFront ECDSA key is configured with SHA1, then the config is rejected', () => {
    assertRejects(
      { type: 'cloudfront', hashAlgorithm: 'SHA1', keys: [{ id: 'K1', active: true, privateKey: testKeys['test-ecdsa-key-sec1.pem'] }] },
      /ECDSA keys require hashAlgorithm SHA256/,
    );
  });

  test('when an Akamai key is odd-length or not hex, then the error names the field and not the key', () => {
    assertRejects(
      { type: 'akamai', keys: [{ id: 'a', active: true, secret: 'abcdef012' }] },
      /keys\.0\.secret: .*even-length hex/,
      'abcdef012',
    );
    assertRejects({ type: 'akamai', keys: [{ id: 'a', active: true, secret: 'not-hex-secret!' }] }, /even-length hex/, 'not-hex-secret!');
  });

  test('when no key or two keys are active, then the error names the problem', () => {
    assertRejects(
      { type: 'nginx', keys: [{ id: 'n', active: false, secret: 's3cr3t-value' }] },
      /keys: keyring has no active key/,
      's3cr3t-value',
    );
    assertRejects(
      {
        type: 'wowza',
        keys: [
          { id: 'a', active: true, secret: 'x' },
          { id: 'b', active: true, secret: 'y' },
        ],
      },
      /2 active keys \(a, b\)/,
    );
  });

  test('when a field is misspelled or the type is unknown, then the config is rejected', () => {
    assertRejects({ type: 'akamai', keys: [{ id: 'a', active: true, privateKey: HEX }] }, /keys\.0/);
    assertRejects({ type: 'akamai', tokenname: 'x', keys: [{ id: 'a', active: true, secret: HEX }] }, /tokenname/);
    assertRejects({ type: 'fastly', keys: [] }, /type/);
  });

  test('when the nginx expression signs $uri, then the config is rejected', () => {
    assertRejects(
      { type: 'nginx', expression: '$secure_link_expires$uri$scope $secret', keys: [{ id: 'n', active: true, secret: 's' }] },
      /expression: .*\$uri/,
    );
  });
});
