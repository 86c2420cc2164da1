// Cross-checks the verifying edge against the VENDORS' own signers: URLs and cookies from
// @aws-sdk/cloudfront-signer and tokens from akamai-edgeauth must pass, and every way of breaking
// them must fail with the right reason. Time is injected (`now`), never slept through.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { getSignedCookies, getSignedUrl } from '@aws-sdk/cloudfront-signer';
import { createAkamaiVerifier, decodeHexKey, type AkamaiVerdict } from './akamai.ts';
import { createCloudFrontVerifier, type CloudFrontVerdict } from './cloudfront.ts';
import { parseCookieHeader, wildcardMatch } from './request-parts.ts';
import { startCdnEdge, type CdnEdge } from './server.ts';

// --- akamai-edgeauth, loaded by its real file path -------------------------------------------
// The npm package's `main` is ./lib/edgeauth.js; akamai/EdgeAuth-Token-Node names the file
// lib/edgeAuth.js, which `main` does not find on a case-sensitive file system. Take whichever exists.
interface EdgeAuthOptions {
  key: string;
  startTime?: number;
  endTime?: number;
  algorithm?: 'sha256' | 'sha1' | 'md5';
  tokenName?: string;
  escapeEarly?: boolean;
  ip?: string;
  sessionId?: string;
  payload?: string;
  salt?: string;
}
interface EdgeAuthInstance {
  generateACLToken(acl: string | string[]): string;
  generateURLToken(url: string): string;
}
type EdgeAuthClass = new (options: EdgeAuthOptions) => EdgeAuthInstance;
const require = createRequire(import.meta.url);
const edgeAuthDir = join(dirname(require.resolve('akamai-edgeauth/package.json')), 'lib');
const edgeAuthFile = ['edgeauth.js', 'edgeAuth.js'].map((name) => join(edgeAuthDir, name)).find((path) => existsSync(path));
if (edgeAuthFile === undefined) throw new Error(`akamai-edgeauth: no lib/edgeauth.js or lib/edgeAuth.js in ${edgeAuthDir}`);
const edgeAuthModule = require(edgeAuthFile) as EdgeAuthClass | { EdgeAuth: EdgeAuthClass };
const EdgeAuth: EdgeAuthClass = typeof edgeAuthModule === 'function' ? edgeAuthModule : edgeAuthModule.EdgeAuth;
/** The library mutates the options object it is given, so each token gets a fresh one. */
function akamaiToken(acl: string | string[], options: EdgeAuthOptions): string {
  return new EdgeAuth({ ...options }).generateACLToken(acl);
}

// --- shared fixtures -------------------------------------------------------------------------
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
const HOUR = 3600_000;
const CDN = 'https://d111111abcdef8.cloudfront.net';

/** The SDK's signed URL for `url`, valid for an hour from NOW (`extra`: its SHA-256 or IP options). */
function sdkSignedUrl(
  url: string,
  keyPairId: string,
  privateKey: string,
  extra: { algorithm?: 'SHA256'; ipAddress?: string } = {},
): string {
  return getSignedUrl({ url, keyPairId, privateKey, dateLessThan: new Date(NOW + HOUR), ...extra });
}

function pemPair(type: 'rsa' | 'ec'): { privatePem: string; publicKey: KeyObject } {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: pair.publicKey };
}

/** Changes one character in the middle (not the last base64 char, whose low bits may be unused). */
function tamper(value: string): string {
  const at = Math.floor(value.length / 2);
  const replacement = value[at] === 'A' ? 'B' : 'A';
  return value.slice(0, at) + replacement + value.slice(at + 1);
}

function replaceParam(url: string, name: string, change: (value: string) => string): string {
  const [base, query = ''] = url.split('?', 2);
  const pairs = query.split('&').map((pair) => (pair.startsWith(`${name}=`) ? `${name}=${change(pair.slice(name.length + 1))}` : pair));
  return `${base ?? ''}?${pairs.join('&')}`;
}

function queryOf(signedUrl: string): string {
  return signedUrl.slice(signedUrl.indexOf('?') + 1);
}

function denied(verdict: CloudFrontVerdict | AkamaiVerdict): { code: string; reason: string } {
  assert.equal(verdict.allowed, false, 'expected a denial');
  return verdict.allowed ? { code: '', reason: '' } : { code: verdict.code, reason: verdict.reason };
}

/** The SDK types CloudFront-Expires as a number; a Cookie header only ever carries strings. */
function asCookies(output: ReturnType<typeof getSignedCookies>): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const [name, value] of Object.entries(output) as [string, string | number | undefined][])
    if (value !== undefined) cookies[name] = String(value);
  return cookies;
}

function statementOf(policyJson: string): unknown {
  return (JSON.parse(policyJson) as { Statement: unknown[] }).Statement[0];
}

function dirPolicy(resource: string, lessThanMs: number, greaterThanMs?: number): string {
  const condition: Record<string, unknown> = { DateLessThan: { 'AWS:EpochTime': Math.floor(lessThanMs / 1000) } };
  if (greaterThanMs !== undefined) condition['DateGreaterThan'] = { 'AWS:EpochTime': Math.floor(greaterThanMs / 1000) };
  return JSON.stringify({ Statement: [{ Resource: resource, Condition: condition }] });
}

describe('wildcard match (both vendors)', () => {
  it('when a pattern has * and ?, then * spans any run including / and ? exactly one character', () => {
    assert.equal(wildcardMatch('https://h/vod/t1/*', 'https://h/vod/t1/hls/480p/seg-1.ts?x=1'), true);
    assert.equal(wildcardMatch('https://h/vod/t1/*', 'https://h/vod/t2/a'), false);
    assert.equal(wildcardMatch('/vod/seg-?.ts', '/vod/seg-7.ts'), true);
    assert.equal(wildcardMatch('/vod/seg-?.ts', '/vod/seg-17.ts'), false);
    assert.equal(wildcardMatch('http*://h/*game*', 'https://h/x/game.zip'), true);
    assert.equal(wildcardMatch('*a*a*a*a*b', 'a'.repeat(200)), false);
  });
});

describe('CloudFront verifier against @aws-sdk/cloudfront-signer', () => {
  for (const keyType of ['rsa', 'ec'] as const) {
    const label = keyType === 'rsa' ? 'RSA-2048' : 'ECDSA P-256';
    describe(label, () => {
      const { privatePem, publicKey } = pemPair(keyType);
      const verifier = createCloudFrontVerifier({ publicKeys: { K2JCJMDEHXQW5F: publicKey } });
      const keyPairId = 'K2JCJMDEHXQW5F';
      const manifest = `${CDN}/vod/t1/hls/480p/index.m3u8`;
      const segment = `${CDN}/vod/t1/hls/480p/seg-00001.ts`;

      it(`when the SDK signs a canned-policy URL with ${label} (SHA-1 default), then the edge allows that URL`, () => {
        const url = sdkSignedUrl(manifest, keyPairId, privatePem);
        assert.match(url, /[?&]Expires=\d+&Key-Pair-Id=K2JCJMDEHXQW5F&Signature=/);
        const verdict = verifier({ url }, NOW);
        assert.deepEqual(verdict, { allowed: true, carrier: 'query', policy: 'canned', keyPairId, resourceUrl: manifest });
      });

      it(`when the SDK signs a canned URL with algorithm SHA256, then it adds Hash-Algorithm=SHA256 and the edge allows it`, () => {
        const url = sdkSignedUrl(manifest, keyPairId, privatePem, { algorithm: 'SHA256' });
        assert.match(url, /&Hash-Algorithm=SHA256$/);
        assert.equal(verifier({ url }, NOW).allowed, true);
      });

      it('when a SHA-256 signature arrives without Hash-Algorithm, then the edge checks it as SHA-1 and refuses it', () => {
        const url = sdkSignedUrl(manifest, keyPairId, privatePem, { algorithm: 'SHA256' });
        assert.equal(denied(verifier({ url: url.replace('&Hash-Algorithm=SHA256', '') }, NOW)).code, 'bad-signature');
      });

      it('when a canned URL is used for another file, then the rebuilt policy does not verify', () => {
        const url = sdkSignedUrl(manifest, keyPairId, privatePem);
        assert.equal(denied(verifier({ url: `${segment}?${queryOf(url)}` }, NOW)).code, 'bad-signature');
      });

      describe('custom policy with a …/dir/* resource', () => {
        const policy = dirPolicy(`${CDN}/vod/t1/hls/480p/*`, NOW + HOUR, NOW - 60_000);
        const signed = getSignedUrl({ url: manifest, keyPairId, privateKey: privatePem, policy, algorithm: 'SHA256' });

        it('when the SDK signs the directory policy, then the manifest and any segment under it are allowed with the same query', () => {
          assert.match(signed, /\?Policy=[A-Za-z0-9~_-]+&Key-Pair-Id=K2JCJMDEHXQW5F&Signature=[A-Za-z0-9~_-]+&Hash-Algorithm=SHA256$/);
          for (const file of [manifest, segment, `${CDN}/vod/t1/hls/480p/sub/dir/seg.m4s`]) {
            const verdict = verifier({ url: `${file}?${queryOf(signed)}` }, NOW);
            assert.equal(verdict.allowed, true, `${file}: ${JSON.stringify(verdict)}`);
          }
        });

        it('when the viewer adds its own query parameter, then * still matches it (the Resource excludes only the signing parameters)', () => {
          assert.equal(verifier({ url: `${segment}?bandwidth=1&${queryOf(signed)}` }, NOW).allowed, true);
        });

        it('when a file outside the resource uses the query, then the edge refuses it as a resource mismatch', () => {
          const verdict = denied(verifier({ url: `${CDN}/vod/t1/hls/1080p/index.m3u8?${queryOf(signed)}` }, NOW));
          assert.equal(verdict.code, 'resource-mismatch');
          assert.match(verdict.reason, /1080p\/index\.m3u8 is not matched by Resource .*480p\/\*/);
        });

        it('when one character of Signature is changed, then the edge refuses it as a bad signature', () => {
          assert.equal(denied(verifier({ url: replaceParam(signed, 'Signature', tamper) }, NOW)).code, 'bad-signature');
        });

        it('when one character of Policy is changed, then the edge refuses it as a bad signature', () => {
          assert.equal(denied(verifier({ url: replaceParam(signed, 'Policy', tamper) }, NOW)).code, 'bad-signature');
        });

        it('when now reaches DateLessThan, then the edge refuses it as expired (and allows it one second before)', () => {
          assert.equal(verifier({ url: signed }, NOW + HOUR - 1000).allowed, true);
          const verdict = denied(verifier({ url: signed }, NOW + HOUR));
          assert.equal(verdict.code, 'expired');
          assert.match(verdict.reason, /^expired: DateLessThan/);
        });

        it('when now is before DateGreaterThan, then the edge refuses it as not yet valid', () => {
          assert.equal(denied(verifier({ url: signed }, NOW - 120_000)).code, 'not-yet-valid');
        });

        it('when the Key-Pair-Id is not trusted, then the edge refuses it as an unknown key', () => {
          const verdict = denied(verifier({ url: replaceParam(signed, 'Key-Pair-Id', () => 'KUNKNOWN0000') }, NOW));
          assert.equal(verdict.code, 'unknown-key');
        });

        it('when the same URL is checked by an edge that trusts another key under that id, then it is a bad signature', () => {
          const other = createCloudFrontVerifier({ publicKeys: { [keyPairId]: pemPair(keyType).publicKey } });
          assert.equal(denied(other({ url: signed }, NOW)).code, 'bad-signature');
        });

        it('when a player re-encodes ~ in the query as %7E, then the values still decode to the signed bytes', () => {
          const reencoded = `${segment}?${queryOf(signed).replaceAll('~', '%7E')}`;
          assert.equal(verifier({ url: reencoded }, NOW).allowed, true);
        });
      });

      describe('signed cookies (custom policy)', () => {
        const cookies = asCookies(
          getSignedCookies({
            url: `${CDN}/vod/t1/hls/480p/*`,
            keyPairId,
            privateKey: privatePem,
            dateLessThan: new Date(NOW + HOUR),
            dateGreaterThan: new Date(NOW - 60_000),
          }),
        );

        it('when the SDK makes cookies for the directory, then every file under it is allowed with no query at all', () => {
          assert.deepEqual(Object.keys(cookies).sort(), ['CloudFront-Key-Pair-Id', 'CloudFront-Policy', 'CloudFront-Signature']);
          for (const url of [manifest, segment]) {
            const verdict = verifier({ url, cookies }, NOW);
            assert.equal(verdict.allowed, true, JSON.stringify(verdict));
            assert.equal(verdict.allowed && verdict.carrier, 'cookie');
          }
        });

        it('when the cookies come through a Cookie header, then they parse to the same values (no %-encoding needed)', () => {
          const header = Object.entries(cookies)
            .map(([name, value]) => `${name}=${value}`)
            .join('; ');
          assert.equal(verifier({ url: segment, cookies: parseCookieHeader(`theme=dark; ${header}`) }, NOW).allowed, true);
        });

        it('when the cookies are sent for a file outside the directory, then the edge refuses a resource mismatch', () => {
          assert.equal(denied(verifier({ url: `${CDN}/vod/t1/hls/1080p/seg-00001.ts`, cookies }, NOW)).code, 'resource-mismatch');
        });

        it('when one character of CloudFront-Signature or CloudFront-Policy is changed, then the edge refuses it', () => {
          const badSignature = { ...cookies, 'CloudFront-Signature': tamper(cookies['CloudFront-Signature'] ?? '') };
          assert.equal(denied(verifier({ url: segment, cookies: badSignature }, NOW)).code, 'bad-signature');
          const badPolicy = { ...cookies, 'CloudFront-Policy': tamper(cookies['CloudFront-Policy'] ?? '') };
          assert.equal(denied(verifier({ url: segment, cookies: badPolicy }, NOW)).code, 'bad-signature');
        });

        it('when the cookies are expired or not yet valid, then the edge refuses them', () => {
          assert.equal(denied(verifier({ url: segment, cookies }, NOW + HOUR)).code, 'expired');
          assert.equal(denied(verifier({ url: segment, cookies }, NOW - HOUR)).code, 'not-yet-valid');
        });

        it('when the cookie key id is unknown, then the edge refuses it', () => {
          const unknown = { ...cookies, 'CloudFront-Key-Pair-Id': 'KNOTTRUSTED' };
          assert.equal(denied(verifier({ url: segment, cookies: unknown }, NOW)).code, 'unknown-key');
        });

        it('when the SDK signs cookies with SHA256, then it adds CloudFront-Hash-Algorithm and the edge allows them', () => {
          const sha256 = asCookies(
            getSignedCookies({
              url: `${CDN}/vod/t1/*`,
              keyPairId,
              privateKey: privatePem,
              dateLessThan: new Date(NOW + HOUR),
              dateGreaterThan: new Date(NOW - 1000),
              algorithm: 'SHA256',
            }),
          );
          assert.equal(sha256['CloudFront-Hash-Algorithm'], 'SHA256');
          assert.equal(verifier({ url: segment, cookies: sha256 }, NOW).allowed, true);
        });

        it('when a request carries a broken signed URL and valid cookies, then the signed URL decides and it is refused', () => {
          const url = sdkSignedUrl(segment, keyPairId, privatePem);
          assert.equal(denied(verifier({ url: replaceParam(url, 'Signature', tamper), cookies }, NOW)).code, 'bad-signature');
        });

        it('when the edge takes only the query, then cookies alone are refused as missing credentials', () => {
          const queryOnly = createCloudFrontVerifier({ publicKeys: { [keyPairId]: publicKey }, carrier: 'query' });
          assert.equal(denied(queryOnly({ url: segment, cookies }, NOW)).code, 'missing-credentials');
        });
      });
    });
  }

  describe('policy rules', () => {
    const { privatePem, publicKey } = pemPair('rsa');
    const keyPairId = 'KPOLICY';
    const verifier = createCloudFrontVerifier({ publicKeys: { [keyPairId]: publicKey } });
    const segment = `${CDN}/vod/t1/hls/480p/seg-00001.ts`;

    it('when the policy has an IPv4 CIDR, then a client inside it is allowed and one outside (or unknown) is refused', () => {
      const url = sdkSignedUrl(segment, keyPairId, privatePem, { ipAddress: '192.0.2.0/24' });
      assert.equal(verifier({ url, clientIp: '192.0.2.77' }, NOW).allowed, true);
      assert.equal(verifier({ url, clientIp: '::ffff:192.0.2.77' }, NOW).allowed, true);
      assert.equal(denied(verifier({ url, clientIp: '198.51.100.1' }, NOW)).code, 'ip-mismatch');
      assert.equal(denied(verifier({ url }, NOW)).code, 'ip-mismatch');
    });

    it('when a signed policy has two statements, then the edge refuses it as malformed', () => {
      const two = JSON.stringify({
        Statement: [statementOf(dirPolicy(`${CDN}/a/*`, NOW + HOUR)), statementOf(dirPolicy(`${CDN}/vod/*`, NOW + HOUR))],
      });
      const url = getSignedUrl({ url: segment, keyPairId, privateKey: privatePem, policy: two });
      const verdict = denied(verifier({ url }, NOW));
      assert.equal(verdict.code, 'malformed');
      assert.match(verdict.reason, /exactly one statement/);
    });

    it('when a signed policy has no DateLessThan, then the edge refuses it as malformed', () => {
      const policy = JSON.stringify({ Statement: [{ Resource: `${CDN}/vod/*`, Condition: { DateGreaterThan: { 'AWS:EpochTime': 1 } } }] });
      const url = getSignedUrl({ url: segment, keyPairId, privateKey: privatePem, policy });
      assert.match(denied(verifier({ url }, NOW)).reason, /DateLessThan is required/);
    });

    it('when a URL has both Expires and Policy, or neither, then the edge refuses it as malformed', () => {
      const canned = sdkSignedUrl(segment, keyPairId, privatePem);
      assert.equal(denied(verifier({ url: `${canned}&Policy=e30_` }, NOW)).code, 'malformed');
      assert.equal(denied(verifier({ url: canned.replace(/Expires=\d+&/, '') }, NOW)).code, 'malformed');
    });

    it('when the SDK is given a wildcard URL but no start date or IP, then it makes a canned policy no file URL satisfies', () => {
      // The JS signer only switches to a custom policy for dateGreaterThan/ipAddress (the AWS CLI
      // also switches for a `*` in the resource), so `…/dir/*` ends up literally in a canned policy.
      const url = sdkSignedUrl(`${CDN}/vod/t1/*`, keyPairId, privatePem);
      assert.match(url, /\?Expires=/);
      assert.equal(denied(verifier({ url: `${segment}?${queryOf(url)}` }, NOW)).code, 'bad-signature');
    });

    it('when no credentials are present at all, then the edge says so', () => {
      assert.equal(denied(verifier({ url: segment }, NOW)).code, 'missing-credentials');
    });

    it('when a key is not RSA or ECDSA P-256, then the verifier refuses the configuration', () => {
      const ed = generateKeyPairSync('ed25519').publicKey;
      assert.throws(() => createCloudFrontVerifier({ publicKeys: { K: ed } }), /RSA or ECDSA P-256/);
    });
  });
});

describe('Akamai EdgeAuth verifier against akamai-edgeauth', () => {
  const key = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const transitionKey = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
  const acl = '/vod/t1/hls/480p/*';
  const st = Math.floor((NOW - 60_000) / 1000);
  const exp = Math.floor((NOW + HOUR) / 1000);
  const token = akamaiToken(acl, { key, startTime: st, endTime: exp });
  const verifier = createAkamaiVerifier({ keys: [key] });
  const manifestPath = '/vod/t1/hls/480p/index.m3u8';
  const segmentPath = '/vod/t1/hls/480p/seg-00001.ts';

  it('when the library makes an ACL token, then it has the documented layout', () => {
    assert.match(token, new RegExp(`^st=${st}~exp=${exp}~acl=/vod/t1/hls/480p/\\*~hmac=[0-9a-f]{64}$`));
  });

  it('when the token is in the __token__ query parameter, then files under the ACL are allowed', () => {
    for (const path of [manifestPath, segmentPath]) {
      const verdict = verifier({ url: `http://edge${path}?__token__=${token}` }, NOW);
      assert.equal(verdict.allowed, true, JSON.stringify(verdict));
    }
  });

  it('when the token is in the __token__ cookie, then files under the ACL are allowed and the carrier is the cookie', () => {
    const verdict = verifier({ url: segmentPath, cookies: parseCookieHeader(`a=b; __token__=${token}`) }, NOW);
    assert.equal(verdict.allowed && verdict.carrier, 'cookie');
  });

  it('when the path is outside the ACL (another rendition), then the edge refuses an ACL mismatch', () => {
    const verdict = denied(verifier({ url: `/vod/t1/hls/1080p/index.m3u8?__token__=${token}` }, NOW));
    assert.equal(verdict.code, 'acl-mismatch');
  });

  it('when the ACL would match only through the query string, then it is still refused (the ACL sees the path only)', () => {
    const verdict = denied(verifier({ url: `/vod/t2/x.ts?next=/vod/t1/hls/480p/&__token__=${token}` }, NOW));
    assert.equal(verdict.code, 'acl-mismatch');
  });

  it('when one character of the token is changed (ACL or hmac), then the edge refuses a bad signature', () => {
    const widened = token.replace('acl=/vod/t1/hls/480p/*', 'acl=/vod/t1/hls/*');
    assert.equal(denied(verifier({ url: `/vod/t1/hls/1080p/a.ts?__token__=${widened}` }, NOW)).code, 'bad-signature');
    const hmacAt = token.indexOf('hmac=') + 10;
    const flipped = token.slice(0, hmacAt) + (token[hmacAt] === '0' ? '1' : '0') + token.slice(hmacAt + 1);
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${flipped}` }, NOW)).code, 'bad-signature');
  });

  it('when now reaches exp, then the edge refuses it as expired', () => {
    assert.equal(verifier({ url: `${segmentPath}?__token__=${token}` }, exp * 1000 - 1).allowed, true);
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${token}` }, exp * 1000)).code, 'expired');
  });

  it('when now is before st, then the edge refuses it as not yet valid', () => {
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${token}` }, st * 1000 - 1)).code, 'not-yet-valid');
  });

  it('when the token was made with another key, then the edge refuses a bad signature', () => {
    const foreign = akamaiToken(acl, { key: 'ffeeddccbbaa99887766554433221100', startTime: st, endTime: exp });
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${foreign}` }, NOW)).code, 'bad-signature');
  });

  it('when the token was made with the transition key, then an edge holding both keys allows it', () => {
    const rotated = akamaiToken(acl, { key: transitionKey, startTime: st, endTime: exp });
    const both = createAkamaiVerifier({ keys: [key, transitionKey] });
    const verdict = both({ url: `${segmentPath}?__token__=${rotated}` }, NOW);
    assert.equal(verdict.allowed && verdict.keyIndex, 1);
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${rotated}` }, NOW)).code, 'bad-signature');
  });

  it('when the library uses sha1 or md5, then an edge configured for it allows the token and a sha256 edge refuses it', () => {
    for (const algorithm of ['sha1', 'md5'] as const) {
      const other = akamaiToken(acl, { key, startTime: st, endTime: exp, algorithm });
      assert.equal(
        createAkamaiVerifier({ keys: [key], algorithm })({ url: `${segmentPath}?__token__=${other}` }, NOW).allowed,
        true,
        algorithm,
      );
      assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${other}` }, NOW)).code, 'malformed', algorithm);
    }
  });

  it('when several ACLs are joined with !, then a path matching any of them is allowed', () => {
    const multi = akamaiToken(['/vod/t1/hls/480p/*', '/vod/t1/hls/720p/seg-?.ts'], { key, startTime: st, endTime: exp });
    assert.match(multi, /~acl=\/vod\/t1\/hls\/480p\/\*!\/vod\/t1\/hls\/720p\/seg-\?\.ts~/);
    assert.equal(verifier({ url: `/vod/t1/hls/720p/seg-7.ts?__token__=${multi}` }, NOW).allowed, true);
    assert.equal(denied(verifier({ url: `/vod/t1/hls/720p/seg-17.ts?__token__=${multi}` }, NOW)).code, 'acl-mismatch');
  });

  it('when a client %-encodes the whole token value, then it is refused (the edge checks the bytes it received)', () => {
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${encodeURIComponent(token)}` }, NOW)).code, 'malformed');
  });

  it('when the token name is configured, then only that name is read; a query-only edge ignores the cookie', () => {
    const named = createAkamaiVerifier({ keys: [key], tokenName: 'hdnts', carrier: 'query' });
    assert.equal(named({ url: `${segmentPath}?hdnts=${token}` }, NOW).allowed, true);
    assert.equal(denied(named({ url: `${segmentPath}?__token__=${token}` }, NOW)).code, 'missing-token');
    assert.equal(denied(named({ url: segmentPath, cookies: { hdnts: token } }, NOW)).code, 'missing-token');
  });

  it('when a key is not even-length hex, then the verifier refuses the configuration (the library would silently truncate it)', () => {
    assert.throws(() => decodeHexKey('abc'), /even-length hex/);
    assert.throws(() => createAkamaiVerifier({ keys: ['YourEncryptionKey'] }), /even-length hex/);
  });

  it('when the token is bound to an ip, then only that client is allowed', () => {
    const bound = akamaiToken(acl, { key, startTime: st, endTime: exp, ip: '192.0.2.9' });
    assert.equal(verifier({ url: `${segmentPath}?__token__=${bound}`, clientIp: '::ffff:192.0.2.9' }, NOW).allowed, true);
    assert.equal(denied(verifier({ url: `${segmentPath}?__token__=${bound}`, clientIp: '192.0.2.10' }, NOW)).code, 'ip-mismatch');
  });

  it('when the library makes a URL token (no acl), then the edge hashes the request path as url= and allows only that path', () => {
    const urlToken = new EdgeAuth({ key, startTime: st, endTime: exp }).generateURLToken(segmentPath);
    assert.equal(verifier({ url: `${segmentPath}?__token__=${urlToken}` }, NOW).allowed, true);
    assert.equal(denied(verifier({ url: `${manifestPath}?__token__=${urlToken}` }, NOW)).code, 'bad-signature');
  });
});

// --- the HTTP edge, end to end ---------------------------------------------------------------
interface Seen {
  url: string;
  cookie: string | undefined;
}

async function startUpstream(): Promise<{ baseUrl: string; seen: Seen[]; stop(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', cookie: req.headers.cookie });
    const body = Buffer.from(`#EXTM3U\n# origin bytes for ${req.url ?? ''}\n`);
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function get(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('verifying edge over HTTP', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let cloudfront: CdnEdge;
  let akamai: CdnEdge;
  const { privatePem, publicKey } = pemPair('rsa');
  const akamaiKey = '00112233445566778899aabbccddeeff';

  before(async () => {
    upstream = await startUpstream();
    cloudfront = await startCdnEdge({
      scheme: 'cloudfront',
      keys: { KEDGE: publicKey },
      carrier: 'either',
      upstream: upstream.baseUrl,
      now: () => NOW,
    });
    akamai = await startCdnEdge({ scheme: 'akamai', keys: [akamaiKey], carrier: 'cookie', upstream: upstream.baseUrl, now: () => NOW });
  });
  after(async () => {
    await cloudfront.stop();
    await akamai.stop();
    await upstream.stop();
  });

  it('when a signed URL is allowed, then the origin answers 200 with its bytes and never sees the signing parameters', async () => {
    const policy = dirPolicy(`${cloudfront.baseUrl}/vod/t1/*`, NOW + HOUR, NOW - 60_000);
    const signed = getSignedUrl({
      url: `${cloudfront.baseUrl}/vod/t1/hls/480p/index.m3u8?lang=en`,
      keyPairId: 'KEDGE',
      privateKey: privatePem,
      policy,
    });
    const before = upstream.seen.length;
    const response = await get(signed);
    assert.equal(response.status, 200, response.body);
    assert.equal(response.headers['content-type'], 'application/vnd.apple.mpegurl');
    assert.equal(response.body, '#EXTM3U\n# origin bytes for /vod/t1/hls/480p/index.m3u8?lang=en\n');
    assert.deepEqual(upstream.seen.slice(before), [{ url: '/vod/t1/hls/480p/index.m3u8?lang=en', cookie: undefined }]);
    assert.equal(cloudfront.requests.at(-1)?.status, 200);
  });

  it('when a request is denied, then the edge answers 403 with the reason and the origin is never called', async () => {
    const policy = dirPolicy(`${cloudfront.baseUrl}/vod/t1/*`, NOW + HOUR);
    const signed = getSignedUrl({
      url: `${cloudfront.baseUrl}/vod/t1/hls/480p/index.m3u8`,
      keyPairId: 'KEDGE',
      privateKey: privatePem,
      policy,
    });
    const before = upstream.seen.length;
    const tampered = await get(replaceParam(signed, 'Signature', tamper));
    const outside = await get(signed.replace('/vod/t1/', '/vod/t2/'));
    const unsigned = await get(`${cloudfront.baseUrl}/vod/t1/hls/480p/index.m3u8`, {}, 'HEAD');
    assert.equal(tampered.status, 403);
    assert.match(tampered.body, /^denied: Signature does not verify/);
    assert.equal(outside.status, 403);
    assert.match(outside.headers['x-cdn-edge-reason'] as string, /resource mismatch/);
    assert.equal(unsigned.status, 403);
    assert.equal(upstream.seen.length, before);
    assert.deepEqual(
      cloudfront.requests.slice(-3).map((r) => [r.method, r.status]),
      [
        ['GET', 403],
        ['GET', 403],
        ['HEAD', 403],
      ],
    );
  });

  it('when a page on another origin sends the Akamai cookie with credentials, then it gets CORS headers and the origin gets no token cookie', async () => {
    const token = akamaiToken('/vod/t1/hls/480p/*', {
      key: akamaiKey,
      startTime: Math.floor(NOW / 1000) - 60,
      endTime: Math.floor(NOW / 1000) + 3600,
    });
    const before = upstream.seen.length;
    const pageOrigin = 'http://localhost:5173';
    const response = await get(`${akamai.baseUrl}/vod/t1/hls/480p/seg-00001.ts`, {
      origin: pageOrigin,
      cookie: `session=abc; __token__=${token}`,
    });
    assert.equal(response.status, 200, response.body);
    assert.equal(response.headers['access-control-allow-origin'], pageOrigin);
    assert.equal(response.headers['access-control-allow-credentials'], 'true');
    assert.match(response.headers.vary ?? '', /Origin/);
    assert.deepEqual(upstream.seen.slice(before), [{ url: '/vod/t1/hls/480p/seg-00001.ts', cookie: 'session=abc' }]);

    const refused = await get(`${akamai.baseUrl}/vod/t1/hls/1080p/seg-00001.ts`, { origin: pageOrigin, cookie: `__token__=${token}` });
    assert.equal(refused.status, 403);
    assert.equal(
      refused.headers['access-control-allow-origin'],
      pageOrigin,
      'a 403 must be readable by the page, not an opaque CORS failure',
    );
    assert.equal(upstream.seen.length, before + 1);
  });

  it('when a browser sends a preflight, then the edge answers it without a token and never calls the origin', async () => {
    const before = upstream.seen.length;
    const response = await get(
      `${akamai.baseUrl}/vod/t1/hls/480p/seg-00001.ts`,
      {
        origin: 'http://localhost:5173',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'range',
      },
      'OPTIONS',
    );
    assert.equal(response.status, 204);
    assert.equal(response.headers['access-control-allow-origin'], 'http://localhost:5173');
    assert.equal(response.headers['access-control-allow-credentials'], 'true');
    assert.equal(response.headers['access-control-allow-headers'], 'range');
    assert.match(response.headers['access-control-allow-methods'] ?? '', /GET/);
    assert.equal(upstream.seen.length, before);
  });

  it('when the injected clock passes the expiry, then the same URL that played is refused', async () => {
    let clock = NOW;
    const edge = await startCdnEdge({ scheme: 'cloudfront', keys: { KEDGE: publicKey }, upstream: upstream.baseUrl, now: () => clock });
    try {
      const signed = getSignedUrl({
        url: `${edge.baseUrl}/vod/t1/a.ts`,
        keyPairId: 'KEDGE',
        privateKey: privatePem,
        dateLessThan: new Date(NOW + 60_000),
      });
      assert.equal((await get(signed)).status, 200);
      clock = NOW + 60_000;
      const late = await get(signed);
      assert.equal(late.status, 403);
      assert.match(late.body, /expired/);
    } finally {
      await edge.stop();
    }
  });
});
