import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { getSignedCookies, getSignedUrl } from '@aws-sdk/cloudfront-signer';
import {
  cannedPolicy,
  cloudfrontBase64,
  createCloudFrontSigner,
  customPolicy,
  signCloudFrontUrl,
  type SignCloudFrontUrlInput,
} from '../../api/signing/cloudfront.ts';
import { createSigner, EXPIRES_AT, fixture, NOT_BEFORE, param, playbackRequest, queryOf, testKeys, type TestKeys } from './helpers.ts';

interface AwsCliCase {
  id: string;
  documentation: string;
  input: {
    resource: string;
    keyPairId: string;
    privateKeyFile: string;
    expirationDate?: number;
    activeDate?: number;
    ipRange?: string;
    hashAlgorithm?: 'SHA1' | 'SHA256';
  };
  expected: {
    policyJson?: string;
    applyTo?: string;
    queryParams?: Record<string, string>;
    signature?: string;
    verifyCryptographically?: boolean;
    error?: boolean;
    errorContains?: string[];
  };
}

const awsCli = fixture<{ cases: AwsCliCase[] }>('cloudfront-sign-url-cases.aws-cli.json');

// The only key file a case names that the fixtures do not carry; any DSA key
// exercises "valid key, unsupported type".
const dsaPem = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

function privateKeyFor(file: string): string {
  if (file === 'test-dsa-key.pem') return dsaPem;
  const pem = testKeys[file as keyof TestKeys] as string | undefined;
  if (pem === undefined) throw new Error(`no test key ${file}`);
  return pem;
}

/** Undoes CloudFront's base64 substitutions. */
function fromCloudfrontBase64(text: string): Buffer {
  return Buffer.from(text.replaceAll('-', '+').replaceAll('_', '=').replaceAll('~', '/'), 'base64');
}

// The aws-cli cases name CLI flags; these are the corresponding names in our errors.
const OUR_NAME_FOR: Record<string, string> = { '--date-less-than': 'DateLessThan', '--url': 'url', '--ip-address': 'ipAddress' };

function inputFor(c: AwsCliCase): SignCloudFrontUrlInput {
  const { input, expected } = c;
  const custom = input.activeDate !== undefined || input.ipRange !== undefined || expected.applyTo !== undefined;
  return {
    url: expected.applyTo ?? input.resource,
    keyPairId: input.keyPairId,
    privateKey: privateKeyFor(input.privateKeyFile),
    // error-missing-expiration deliberately leaves it out.
    expires: input.expirationDate as number,
    policy: custom ? 'custom' : 'canned',
    hashAlgorithm: input.hashAlgorithm ?? 'SHA1',
    ...(custom && expected.applyTo !== undefined && { resource: input.resource }),
    ...(input.activeDate !== undefined && { notBefore: input.activeDate }),
    ...(input.ipRange !== undefined && { ipAddress: input.ipRange }),
  };
}

describe('CloudFront: aws-cli shared sign cases', () => {
  test('when the fixture is loaded, then all 19 published cases are present', () => {
    assert.equal(awsCli.cases.length, 19);
  });

  for (const c of awsCli.cases) {
    const { expected } = c;
    if (expected.error === true) {
      test(`when case ${c.id} (${c.documentation}), then signing throws naming ${String(expected.errorContains)}`, () => {
        assert.throws(
          () => signCloudFrontUrl(inputFor(c)),
          (error: Error) => {
            for (const word of expected.errorContains ?? []) {
              const ours = OUR_NAME_FOR[word] ?? word;
              assert.ok(error.message.toLowerCase().includes(ours.toLowerCase()), `"${error.message}" should mention ${ours}`);
            }
            return true;
          },
        );
      });
      continue;
    }

    test(`when case ${c.id} (${c.documentation}), then policy, query parameters and signature match`, () => {
      const input = inputFor(c);
      const policyJson =
        input.policy === 'canned'
          ? cannedPolicy(input.url, input.expires)
          : customPolicy({
              resource: input.resource ?? input.url,
              dateLessThan: input.expires,
              ...(input.notBefore !== undefined && { dateGreaterThan: input.notBefore }),
              ...(input.ipAddress !== undefined && { ipAddress: input.ipAddress }),
            });
      assert.equal(policyJson, expected.policyJson);

      const url = signCloudFrontUrl(input);
      const base = expected.applyTo ?? c.input.resource;
      assert.ok(url.startsWith(base + (base.includes('?') ? '&' : '?')), url);

      const params = queryOf(url);
      const signature = params.get('Signature');
      const policy = params.get('Policy');
      params.delete('Signature');
      params.delete('Policy');
      assert.deepEqual(Object.fromEntries(params), expected.queryParams);
      assert.equal(policy, input.policy === 'custom' ? cloudfrontBase64(policyJson) : undefined);
      assert.ok(signature !== undefined);

      if (expected.verifyCryptographically === true) {
        // ECDSA is randomised: check the DER signature against the published public key.
        const publicKey = createPublicKey(testKeys['test-ecdsa-key-public.pem']);
        assert.ok(verify('sha256', Buffer.from(policyJson), publicKey, fromCloudfrontBase64(signature)));
      } else {
        assert.equal(signature, expected.signature);
      }
    });
  }
});

interface BotocoreCase {
  id: string;
  input: Record<string, string>;
  expected_exact?: string;
  expected_parsed?: unknown;
  expected_url?: string;
  key_pair_id?: string;
}
const botocore = fixture<{ cases: BotocoreCase[] }>('cloudfront-encoding-stub-cases.botocore.json');
const botocoreCase = (id: string): BotocoreCase => {
  const found = botocore.cases.find((c) => c.id === id);
  if (found === undefined) throw new Error(`missing botocore case ${id}`);
  return found;
};
const JAN_2016 = 1451606400;
const DEC_2015 = 1448928000;

describe('CloudFront: botocore stubbed-signer cases', () => {
  test('when building the canned policy for "foo", then the bytes equal botocore build_canned_policy', () => {
    assert.equal(cannedPolicy('foo', JAN_2016), botocoreCase('build_canned_policy').expected_exact);
  });

  test('when building a custom policy with start and IP, then it parses to botocore build_custom_policy', () => {
    const policy = customPolicy({ resource: 'foo', dateLessThan: JAN_2016, dateGreaterThan: DEC_2015, ipAddress: '12.34.56.78/9' });
    assert.deepEqual(JSON.parse(policy), botocoreCase('build_custom_policy').expected_parsed);
  });

  test('when the stub signature is "signed", then its CloudFront base64 is the published c2lnbmVk', () => {
    assert.equal(cloudfrontBase64('signed'), 'c2lnbmVk');
  });

  test('when presigning with only an expiry, then every parameter except the signature equals botocore', () => {
    const c = botocoreCase('generate_presign_url_with_expire_time');
    const url = signCloudFrontUrl({
      url: 'http://test.com/foo.txt',
      keyPairId: 'MYKEYID',
      privateKey: testKeys['test-rsa-key.pem'],
      expires: JAN_2016,
      policy: 'canned',
      hashAlgorithm: 'SHA1',
    });
    const expected = queryOf(c.expected_url ?? '');
    const ours = queryOf(url);
    // botocore's stub id MY_KEY_ID has an underscore; real Key-Pair-Ids are alphanumeric.
    expected.delete('Key-Pair-Id');
    ours.delete('Key-Pair-Id');
    expected.delete('Signature');
    ours.delete('Signature');
    assert.deepEqual(Object.fromEntries(ours), Object.fromEntries(expected));
    assert.ok(url.startsWith('http://test.com/foo.txt?'));
  });

  test('when presigning a URL with a query using botocore key order, then the Policy parameter is byte-identical', () => {
    const c = botocoreCase('generate_presign_url_with_custom_policy');
    const url = signCloudFrontUrl({
      url: 'http://test.com/index.html?foo=bar',
      resource: 'foo',
      keyPairId: 'MYKEYID',
      privateKey: testKeys['test-rsa-key.pem'],
      expires: JAN_2016,
      notBefore: DEC_2015,
      ipAddress: '12.34.56.78/9',
      policy: 'custom',
      hashAlgorithm: 'SHA1',
    });
    assert.ok(url.startsWith('http://test.com/index.html?foo=bar&Policy='), url);
    assert.equal(param(url, 'Policy'), param(c.expected_url ?? '', 'Policy'));
    assert.equal(param(url, 'foo'), 'bar');
  });
});

describe('CloudFront: cross-check with @aws-sdk/cloudfront-signer', () => {
  const privateKey = testKeys['test-rsa-key.pem'];
  const keyPairId = 'K1TESTKEY';
  const dateLessThan = new Date(1767290400 * 1000);
  const dateGreaterThan = new Date(1767200000 * 1000);
  const url = 'https://d111111abcdef8.cloudfront.net/vod/title%20one/master.m3u8';

  // A row: what differs between our input and the SDK's (both sign `url` with the same key, expiring at dateLessThan).
  const sameAsSdk: {
    when: string;
    ours: Omit<SignCloudFrontUrlInput, 'keyPairId' | 'privateKey' | 'expires'>;
    sdk: { url: string; dateGreaterThan?: Date; ipAddress?: string; algorithm?: 'SHA256' };
  }[] = [
    { when: 'signing a canned policy with SHA1', ours: { url, policy: 'canned', hashAlgorithm: 'SHA1' }, sdk: { url } },
    {
      when: 'signing a canned policy with SHA256',
      ours: { url, policy: 'canned', hashAlgorithm: 'SHA256' },
      sdk: { url, algorithm: 'SHA256' },
    },
    {
      when: 'the URL already has a query',
      ours: { url: `${url}?size=large`, policy: 'canned', hashAlgorithm: 'SHA1' },
      sdk: { url: `${url}?size=large` },
    },
    {
      when: 'signing a custom policy with a start date',
      ours: { url, notBefore: 1767200000, policy: 'custom', hashAlgorithm: 'SHA256' },
      sdk: { url, dateGreaterThan, algorithm: 'SHA256' },
    },
    {
      when: 'signing a custom policy with an IP',
      ours: { url, ipAddress: '203.0.113.7', policy: 'custom', hashAlgorithm: 'SHA1' },
      sdk: { url, ipAddress: '203.0.113.7' },
    },
  ];
  for (const row of sameAsSdk) {
    test(`when ${row.when}, then our URL equals the SDK URL byte for byte`, () => {
      const ours = signCloudFrontUrl({ ...row.ours, keyPairId, privateKey, expires: 1767290400 });
      assert.equal(ours, getSignedUrl({ ...row.sdk, keyPairId, privateKey, dateLessThan }));
    });
  }

  test('when the SDK is handed our wildcard policy, then it produces our URL byte for byte', () => {
    const policy = customPolicy({
      resource: 'https://d111111abcdef8.cloudfront.net/vod/title%20one/*',
      dateLessThan: 1767290400,
      dateGreaterThan: 1767200000,
    });
    const ours = signCloudFrontUrl({
      url,
      resource: 'https://d111111abcdef8.cloudfront.net/vod/title%20one/*',
      keyPairId,
      privateKey,
      expires: 1767290400,
      notBefore: 1767200000,
      policy: 'custom',
      hashAlgorithm: 'SHA256',
    });
    assert.equal(ours, getSignedUrl({ url, keyPairId, privateKey, policy, algorithm: 'SHA256' }));
  });

  test('when both start date and IP are set, then the SDK orders keys differently from aws-cli but the policies are equivalent', () => {
    const input = {
      url,
      keyPairId,
      privateKey,
      expires: 1767290400,
      notBefore: 1767200000,
      ipAddress: '203.0.113.0/24',
      policy: 'custom',
      hashAlgorithm: 'SHA1',
    } as const;
    const ours = signCloudFrontUrl(input);
    const sdk = getSignedUrl({ url, keyPairId, privateKey, dateLessThan, dateGreaterThan, ipAddress: '203.0.113.0/24' });
    const ourPolicy = fromCloudfrontBase64(param(ours, 'Policy')).toString();
    const sdkPolicy = fromCloudfrontBase64(param(sdk, 'Policy')).toString();
    // CloudFront verifies the Policy bytes it is sent, so either order is valid.
    assert.notEqual(ourPolicy, sdkPolicy);
    assert.deepEqual(JSON.parse(ourPolicy), JSON.parse(sdkPolicy));
    const publicKey = createPublicKey(testKeys['test-rsa-key-public.pem']);
    assert.ok(verify('sha1', Buffer.from(ourPolicy), publicKey, fromCloudfrontBase64(param(ours, 'Signature'))));
  });
});

describe('CloudFront: input rules', () => {
  const base = { keyPairId: 'K1TESTKEY', privateKey: testKeys['test-rsa-key.pem'], expires: 1767290400, hashAlgorithm: 'SHA1' } as const;

  test('when the resource contains a backslash or a space, then building the policy throws', () => {
    assert.throws(() => customPolicy({ resource: 'https://x/a\\"b', dateLessThan: 1767290400 }), /resource/);
    assert.throws(() => cannedPolicy('https://x/a b', 1767290400), /url/);
  });

  test('when the IP is IPv6 or out of range, then building the policy throws', () => {
    assert.throws(() => customPolicy({ resource: 'https://x/*', dateLessThan: 1767290400, ipAddress: '2001:db8::1' }), /IPv4/);
    assert.throws(() => customPolicy({ resource: 'https://x/*', dateLessThan: 1767290400, ipAddress: '256.1.1.1' }), /IPv4/);
    assert.throws(() => customPolicy({ resource: 'https://x/*', dateLessThan: 1767290400, ipAddress: '10.0.0.0/33' }), /IPv4/);
  });

  test('when the IP has no mask, then the policy carries it as /32', () => {
    const policy = customPolicy({ resource: 'https://x/*', dateLessThan: 1767290400, ipAddress: '10.1.2.3' });
    assert.ok(policy.includes('"AWS:SourceIp":"10.1.2.3/32"'));
  });

  test('when a canned policy is asked for with a start date or another resource, then signing throws', () => {
    assert.throws(() => signCloudFrontUrl({ ...base, url: 'https://x/a', policy: 'canned', notBefore: 1767200000 }), /custom policy/);
    assert.throws(() => signCloudFrontUrl({ ...base, url: 'https://x/a', policy: 'canned', resource: 'https://x/*' }), /custom policy/);
  });

  test('when the URL has a fragment, then signing throws', () => {
    assert.throws(() => signCloudFrontUrl({ ...base, url: 'https://x/a#t=10', policy: 'canned' }), /fragment/);
  });

  test('when the key is an Ed25519 key, then signing throws naming RSA and ECDSA', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => signCloudFrontUrl({ ...base, url: 'https://x/a', policy: 'canned', privateKey: pem }), /RSA or ECDSA/);
  });

  test('when the key is ECDSA on P-384, then signing throws (CloudFront takes P-256 only)', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(
      () => signCloudFrontUrl({ ...base, hashAlgorithm: 'SHA256', url: 'https://x/a', policy: 'canned', privateKey: pem }),
      /P-256/,
    );
  });
});

/** CloudFront resource matching: `*` is any run of characters, `?` exactly one. */
function resourceMatches(resource: string, url: string): boolean {
  const pattern = resource
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${pattern}$`).test(url);
}

describe('CloudFront: playback UrlSigner', () => {
  const signer = createCloudFrontSigner({
    hashAlgorithm: 'SHA256',
    bindClientIp: false,
    keys: [{ id: 'K2ACTIVE', active: true, material: createPrivateKey(testKeys['test-rsa-key-pkcs1.pem']) }],
  });
  const request = playbackRequest();
  const url = signer.sign(request);
  const policy = JSON.parse(fromCloudfrontBase64(param(url, 'Policy')).toString()) as {
    Statement: [{ Resource: string; Condition: Record<string, Record<string, unknown>> }];
  };
  const [statement] = policy.Statement;

  test('when signing playback, then the URL starts with origin + manifestPath and carries a custom policy', () => {
    assert.ok(url.startsWith('https://cdn.example.com/vod/title-42/master.m3u8?Policy='), url);
    assert.equal(queryOf(url).has('Expires'), false);
    assert.equal(param(url, 'Hash-Algorithm'), 'SHA256');
  });

  test('when signing playback, then the policy resource is origin + scopePath + * and covers segments but not siblings', () => {
    assert.equal(statement.Resource, 'https://cdn.example.com/vod/title-42/*');
    assert.ok(resourceMatches(statement.Resource, 'https://cdn.example.com/vod/title-42/720p/seg-00001.ts'));
    assert.ok(resourceMatches(statement.Resource, 'https://cdn.example.com/vod/title-42/master.m3u8'));
    assert.equal(resourceMatches(statement.Resource, 'https://cdn.example.com/vod/title-420/master.m3u8'), false);
  });

  test('when signing playback, then DateGreaterThan is notBefore and DateLessThan is expiresAt', () => {
    assert.deepEqual(statement.Condition['DateGreaterThan'], { 'AWS:EpochTime': NOT_BEFORE.getTime() / 1000 });
    assert.deepEqual(statement.Condition['DateLessThan'], { 'AWS:EpochTime': EXPIRES_AT.getTime() / 1000 });
    assert.equal(statement.Condition['IpAddress'], undefined);
  });

  test('when signing playback, then Key-Pair-Id is the active key and the signature verifies with its public key', () => {
    assert.equal(param(url, 'Key-Pair-Id'), 'K2ACTIVE');
    assert.equal(signer.activeKey.id, 'K2ACTIVE');
    const policyBytes = fromCloudfrontBase64(param(url, 'Policy'));
    const publicKey = createPublicKey(testKeys['test-rsa-key-public.pem']);
    assert.ok(verify('sha256', policyBytes, publicKey, fromCloudfrontBase64(param(url, 'Signature'))));
  });

  test('when the signer uses an ECDSA key, then playback signatures verify as DER with the public key', () => {
    const ecdsa = createCloudFrontSigner({
      hashAlgorithm: 'SHA256',
      bindClientIp: false,
      keys: [{ id: 'K3EC', active: true, material: createPrivateKey(testKeys['test-ecdsa-key-sec1.pem']) }],
    });
    const signed = ecdsa.sign(request);
    const publicKey = createPublicKey(testKeys['test-ecdsa-key-public.pem']);
    assert.ok(verify('sha256', fromCloudfrontBase64(param(signed, 'Policy')), publicKey, fromCloudfrontBase64(param(signed, 'Signature'))));
  });

  test('when IP binding is on, then the policy carries the client IP as /32, and a request without IP throws', () => {
    const bound = createCloudFrontSigner({
      hashAlgorithm: 'SHA256',
      bindClientIp: true,
      keys: [{ id: 'K2', active: true, material: createPrivateKey(testKeys['test-rsa-key.pem']) }],
    });
    const signed = bound.sign(playbackRequest({ clientIp: '198.51.100.9' }));
    assert.ok(fromCloudfrontBase64(param(signed, 'Policy')).toString().includes('"IpAddress":{"AWS:SourceIp":"198.51.100.9/32"}'));
    assert.throws(() => bound.sign(playbackRequest()), /clientIp/);
    assert.throws(() => bound.sign(playbackRequest({ clientIp: '2001:db8::1' })), /IPv4/);
  });

  test('when an ECDSA key is configured with SHA1, then creating the signer from that configuration throws', () => {
    // The signer trusts its options: the configuration schema is what refuses the pair.
    assert.throws(
      () =>
        createSigner({
          type: 'cloudfront',
          hashAlgorithm: 'SHA1',
          keys: [{ id: 'K3EC', active: true, privateKey: testKeys['test-ecdsa-key.pem'] }],
        }),
      /SHA256/,
    );
  });
});

describe('CloudFront: playback signed cookies', () => {
  const signer = createCloudFrontSigner({
    hashAlgorithm: 'SHA256',
    bindClientIp: false,
    keys: [{ id: 'K2ACTIVE', active: true, material: createPrivateKey(testKeys['test-rsa-key.pem']) }],
  });

  test('when cookies are signed for a scope, then they equal getSignedCookies of @aws-sdk/cloudfront-signer for origin + scope + * byte for byte', () => {
    const ours = Object.fromEntries(signer.cookieToken?.(playbackRequest()) ?? []);
    const sdk = getSignedCookies({
      url: 'https://cdn.example.com/vod/title-42/*',
      keyPairId: 'K2ACTIVE',
      privateKey: testKeys['test-rsa-key.pem'],
      dateLessThan: EXPIRES_AT,
      dateGreaterThan: NOT_BEFORE,
      algorithm: 'SHA256',
    });
    assert.deepEqual(ours, { ...sdk });
    assert.deepEqual(Object.keys(ours), [
      'CloudFront-Policy',
      'CloudFront-Signature',
      'CloudFront-Key-Pair-Id',
      'CloudFront-Hash-Algorithm',
    ]);
  });

  test('when cookies and the query token are signed for one scope, then they carry the same policy and signature', () => {
    const cookies = new Map(signer.cookieToken?.(playbackRequest()) ?? []);
    const query = new Map(signer.queryToken(playbackRequest()));
    assert.equal(cookies.get('CloudFront-Policy'), query.get('Policy'));
    assert.equal(cookies.get('CloudFront-Signature'), query.get('Signature'));
  });
});
