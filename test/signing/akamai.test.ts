// No published EdgeAuth vectors exist, so every HMAC here is recomputed by
// openssl from a hand-written hash input; the layout rules come from
// akamai/EdgeAuth-Token-Node (field order) and -Python (end <= start rejected).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { createAkamaiSigner, edgeAuthToken } from '../../api/signing/akamai.ts';
import { EXPIRES_AT, NOT_BEFORE, opensslHmacHex, param, playbackRequest } from './helpers.ts';

const KEY = 'aabbccddeeff00112233445566778899';
const OTHER_KEY = '0123456789abcdef0123456789abcdef';

/** Splits `...~hmac=<hex>` into the signed part and the hmac. */
function splitToken(token: string): { body: string; hmac: string } {
  const at = token.lastIndexOf('~hmac=');
  return { body: token.slice(0, at), hmac: token.slice(at + '~hmac='.length) };
}

describe('Akamai EdgeAuth token', () => {
  test('when generating an ACL token with a start time, then it is st~exp~acl~hmac and the HMAC matches openssl with the hex-decoded key', () => {
    const token = edgeAuthToken({ key: KEY, startTime: 1767200000, endTime: 1767290400, acl: '/vod/title-42/*' });
    const expectedBody = 'st=1767200000~exp=1767290400~acl=/vod/title-42/*';
    assert.equal(token, `${expectedBody}~hmac=${opensslHmacHex('sha256', KEY, expectedBody)}`);
  });

  test('when every optional field is set, then they appear in the order ip, st, exp, acl, id, data', () => {
    const token = edgeAuthToken({
      key: KEY,
      ip: '203.0.113.7',
      startTime: 1767200000,
      endTime: 1767290400,
      acl: '/a/*',
      sessionId: 'sess-1',
      data: 'user%3D42',
    });
    const body = 'ip=203.0.113.7~st=1767200000~exp=1767290400~acl=/a/*~id=sess-1~data=user%3D42';
    assert.equal(token, `${body}~hmac=${opensslHmacHex('sha256', KEY, body)}`);
  });

  test('when several ACLs are given, then they are joined with "!" unescaped', () => {
    const token = edgeAuthToken({ key: KEY, endTime: 1767290400, acl: ['/a/*', '/b/*.m3u8'] });
    const body = 'exp=1767290400~acl=/a/*!/b/*.m3u8';
    assert.equal(token, `${body}~hmac=${opensslHmacHex('sha256', KEY, body)}`);
  });

  test('when generating a URL token with a salt, then url and salt are hashed but not emitted', () => {
    const token = edgeAuthToken({ key: KEY, endTime: 1767290400, url: '/vod/a.m3u8', salt: 'pepper' });
    const { body, hmac } = splitToken(token);
    assert.equal(body, 'exp=1767290400');
    assert.equal(hmac, opensslHmacHex('sha256', KEY, 'exp=1767290400~url=/vod/a.m3u8~salt=pepper'));
  });

  test('when SHA-1 or MD5 is chosen, then the HMAC uses that digest', () => {
    for (const algorithm of ['sha1', 'md5'] as const) {
      const { body, hmac } = splitToken(edgeAuthToken({ key: KEY, algorithm, endTime: 1767290400, acl: '/*' }));
      assert.equal(hmac, opensslHmacHex(algorithm, KEY, body));
    }
  });

  test('when the key is used as text instead of hex bytes, then the HMAC would differ (the key is decoded)', () => {
    const { body, hmac } = splitToken(edgeAuthToken({ key: KEY, endTime: 1767290400, acl: '/*' }));
    const asText = Buffer.from(KEY, 'utf8').toString('hex');
    assert.notEqual(hmac, opensslHmacHex('sha256', asText, body));
  });

  test('when end equals or precedes start, then generation throws', () => {
    assert.throws(() => edgeAuthToken({ key: KEY, startTime: 100, endTime: 100, acl: '/*' }), /after startTime/);
    assert.throws(() => edgeAuthToken({ key: KEY, startTime: 100, endTime: 99, acl: '/*' }), /after startTime/);
  });

  test('when the key is odd-length or not hex, then generation throws', () => {
    assert.throws(() => edgeAuthToken({ key: 'abc', endTime: 100, acl: '/*' }), /even-length hex/);
    assert.throws(() => edgeAuthToken({ key: 'zz', endTime: 100, acl: '/*' }), /even-length hex/);
  });

  test('when both or neither of acl and url are given, then generation throws', () => {
    assert.throws(() => edgeAuthToken({ key: KEY, endTime: 100, acl: '/*', url: '/a' }), /exactly one/);
    assert.throws(() => edgeAuthToken({ key: KEY, endTime: 100 }), /exactly one/);
  });

  test('when a field contains the "~" delimiter or an ACL entry contains "!", then generation throws', () => {
    assert.throws(() => edgeAuthToken({ key: KEY, endTime: 100, acl: '/a/*', data: 'x~acl=/*' }), /data/);
    assert.throws(() => edgeAuthToken({ key: KEY, endTime: 100, acl: '/a!/*' }), /"!"/);
    assert.throws(() => edgeAuthToken({ key: KEY, endTime: 100, acl: '/a b/*' }), /acl/);
  });
});

describe('Akamai playback UrlSigner', () => {
  const signer = createAkamaiSigner({
    tokenName: '__token__',
    algorithm: 'sha256',
    bindClientIp: false,
    keys: [
      { id: 'old', active: false, material: OTHER_KEY },
      { id: 'k2026', active: true, material: KEY },
    ],
  });
  const url = signer.sign(playbackRequest());

  test('when signing playback, then the URL is origin + manifestPath + ?__token__=st~exp~acl=scope*~hmac', () => {
    const st = NOT_BEFORE.getTime() / 1000;
    const exp = EXPIRES_AT.getTime() / 1000;
    const body = `st=${st}~exp=${exp}~acl=/vod/title-42/*`;
    assert.equal(url, `https://cdn.example.com/vod/title-42/master.m3u8?__token__=${body}~hmac=${opensslHmacHex('sha256', KEY, body)}`);
    assert.equal(signer.activeKey.id, 'k2026');
  });

  test('when a token name and IP binding are configured, then the token uses them and requires clientIp', () => {
    const bound = createAkamaiSigner({
      tokenName: 'hdnts',
      algorithm: 'sha256',
      bindClientIp: true,
      keys: [{ id: 'k', active: true, material: KEY }],
    });
    const token = param(bound.sign(playbackRequest({ clientIp: '198.51.100.9' })), 'hdnts');
    assert.ok(token.startsWith('ip=198.51.100.9~st='), token);
    const { body, hmac } = splitToken(token);
    assert.equal(hmac, opensslHmacHex('sha256', KEY, body));
    assert.throws(() => bound.sign(playbackRequest()), /clientIp/);
  });

  test('when the scope contains "!" or "~", then signing throws instead of emitting a split or broken ACL', () => {
    assert.throws(() => signer.sign(playbackRequest({ scopePath: '/vod/a!/', manifestPath: '/vod/a!/m.m3u8' })), /"!"/);
    assert.throws(() => signer.sign(playbackRequest({ scopePath: '/vod/~a/', manifestPath: '/vod/~a/m.m3u8' })), /acl/);
  });
});

describe("Akamai: cross-check with Akamai's own library (akamai-edgeauth)", () => {
  // CommonJS, and no types: the constructor options and generateACLToken are all we use.
  const EdgeAuth = createRequire(import.meta.url)('akamai-edgeauth') as new (options: Record<string, unknown>) => {
    generateACLToken(acl: string): string;
  };
  const signer = createAkamaiSigner({
    tokenName: '__token__',
    algorithm: 'sha256',
    bindClientIp: false,
    keys: [{ id: 'k', active: true, material: KEY }],
  });

  test('when a cookie token is signed for a scope, then it equals EdgeAuth generateACLToken(scope + *) byte for byte', () => {
    const [pair] = signer.cookieToken?.(playbackRequest()) ?? [];
    const akamai = new EdgeAuth({
      key: KEY,
      algorithm: 'sha256',
      startTime: NOT_BEFORE.getTime() / 1000,
      endTime: EXPIRES_AT.getTime() / 1000,
    });
    assert.deepEqual(pair, ['__token__', akamai.generateACLToken('/vod/title-42/*')]);
  });

  test('when the query token is signed for the same scope, then it is the same token', () => {
    assert.deepEqual(signer.queryToken(playbackRequest()), signer.cookieToken?.(playbackRequest()));
  });
});
