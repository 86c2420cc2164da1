import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { ManifestTokens } from '../../api/manifests/manifest-token.ts';

const SECRET = 'a-manifest-secret-of-at-least-32-bytes!';
const NOW = Date.parse('2026-12-01T00:00:00Z');
const EXPIRES = NOW / 1000 + 3600;
const tokens = new ManifestTokens([{ id: 'm1', active: true, material: SECRET }]);
const prefix = tokens.pathPrefix({ cdn: 'nginx-q', expires: EXPIRES, scopePath: '/vod/t/hls/480p/' });
const [, , , cdn = '', keyId = '', expires = '', hmac = ''] = prefix.split('/');
const token = { cdn, keyId, expires, hmac };

describe('manifest URL token', () => {
  it('when made, then it is /v1/manifests/<cdn>/<key id>/<expires>/<HMAC-SHA256 of cdn, expires and scope>', () => {
    const expected = createHmac('sha256', SECRET).update(`nginx-q\n${EXPIRES}\n/vod/t/hls/480p/`).digest('base64url');
    assert.equal(prefix, `/v1/manifests/nginx-q/m1/${EXPIRES}/${expected}`);
  });

  it('when the master or a variant playlist below the scope is asked for, then the token covers it and names the scope', () => {
    assert.deepEqual(tokens.check(token, '/vod/t/hls/480p/master.m3u8', NOW), { ok: true, scopePath: '/vod/t/hls/480p/' });
    assert.deepEqual(tokens.check(token, '/vod/t/hls/480p/360p/index.m3u8', NOW), { ok: true, scopePath: '/vod/t/hls/480p/' });
  });

  it('when another ceiling, another title or another CDN is asked for, then it is invalid', () => {
    assert.deepEqual(tokens.check(token, '/vod/t/hls/1080p/master.m3u8', NOW), { ok: false, why: 'invalid' });
    assert.deepEqual(tokens.check(token, '/vod/u/hls/480p/master.m3u8', NOW), { ok: false, why: 'invalid' });
    assert.deepEqual(tokens.check({ ...token, cdn: 'other' }, '/vod/t/hls/480p/master.m3u8', NOW), { ok: false, why: 'invalid' });
  });

  it('when the hmac, the expiry or the key id is changed, then it is invalid', () => {
    const flipped = `${hmac.startsWith('A') ? 'B' : 'A'}${hmac.slice(1)}`;
    assert.deepEqual(tokens.check({ ...token, hmac: flipped }, '/vod/t/hls/480p/master.m3u8', NOW), { ok: false, why: 'invalid' });
    assert.deepEqual(tokens.check({ ...token, expires: String(EXPIRES + 1) }, '/vod/t/hls/480p/master.m3u8', NOW), {
      ok: false,
      why: 'invalid',
    });
    assert.deepEqual(tokens.check({ ...token, keyId: 'm2' }, '/vod/t/hls/480p/master.m3u8', NOW), { ok: false, why: 'invalid' });
    assert.deepEqual(tokens.check({ ...token, hmac: 'short' }, '/vod/t/hls/480p/master.m3u8', NOW), { ok: false, why: 'invalid' });
  });

  it('when a genuine token is past its expiry, then it is expired (and only a genuine one is told so)', () => {
    assert.deepEqual(tokens.check(token, '/vod/t/hls/480p/master.m3u8', (EXPIRES + 1) * 1000), { ok: false, why: 'expired' });
  });

  it('when the keys rotate, then URLs signed with the previous active key still verify', () => {
    const rotated = new ManifestTokens([
      { id: 'm1', active: false, material: SECRET },
      { id: 'm2', active: true, material: 'the-next-manifest-secret-32-bytes-long' },
    ]);
    assert.equal(rotated.check(token, '/vod/t/hls/480p/master.m3u8', NOW).ok, true);
    assert.match(
      rotated.pathPrefix({ cdn: 'nginx-q', expires: EXPIRES, scopePath: '/vod/t/hls/480p/' }),
      /^\/v1\/manifests\/nginx-q\/m2\//,
    );
  });
});
