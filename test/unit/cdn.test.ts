import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseCdn, encodeMediaPath, type Cdn } from '../../api/delivery/cdn.ts';
import { GrantCache } from '../../api/delivery/grant-cache.ts';
import type { UrlSigner } from '../../api/signing/signer.ts';

const signer: UrlSigner = {
  scheme: 'test',
  activeKey: { id: 'k' },
  queryToken: () => [],
  sign: (request) => request.origin + request.manifestPath,
};
const cdn = (name: string, weight: number): Cdn => ({
  name,
  origin: `https://${name}.example.com`,
  weight,
  pathPrefix: '',
  signer,
  delivery: { mode: 'query' },
});

describe('chooseCdn', () => {
  const cdns = [cdn('a', 3), cdn('off', 0), cdn('b', 1)];
  it('when the draw falls in the first weight band, then the first CDN', () => {
    assert.equal(chooseCdn(cdns, () => 0)?.name, 'a');
    assert.equal(chooseCdn(cdns, () => 0.74)?.name, 'a');
  });
  it('when the draw falls in the last band, then the last CDN; a zero weight is never chosen', () => {
    assert.equal(chooseCdn(cdns, () => 0.75)?.name, 'b');
    assert.equal(chooseCdn(cdns, () => 0.999999)?.name, 'b');
  });
  it('when many draws are made, then the split follows the weights', () => {
    let seed = 42;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i += 1) {
      const name = chooseCdn(cdns, random)?.name ?? 'none';
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    assert.equal(counts.get('off'), undefined);
    const share = (counts.get('a') ?? 0) / 20_000;
    assert.ok(share > 0.73 && share < 0.77, `share of a = ${share}`);
  });
  it('when every weight is zero, then no CDN', () => {
    assert.equal(
      chooseCdn([cdn('x', 0)], () => 0.5),
      undefined,
    );
  });
});

describe('encodeMediaPath', () => {
  it('when a prefix and a rendition path are joined, then the scope is the manifest directory', () => {
    assert.deepEqual(encodeMediaPath('/media', { protocol: 'hls', height: 720, path: 'vod/tt1/hls/720p/master.m3u8' }), {
      manifestPath: '/media/vod/tt1/hls/720p/master.m3u8',
      scopePath: '/media/vod/tt1/hls/720p/',
    });
  });
  it('when a path segment needs escaping, then it is percent-encoded once', () => {
    const { manifestPath, scopePath } = encodeMediaPath('', { protocol: 'hls', height: 720, path: 'vod/Le Film é/master.m3u8' });
    assert.equal(manifestPath, '/vod/Le%20Film%20%C3%A9/master.m3u8');
    assert.equal(scopePath, '/vod/Le%20Film%20%C3%A9/');
  });
  it('when a rendition path tries to climb out with "..", then it is refused', () => {
    assert.throws(() => encodeMediaPath('', { protocol: 'hls', height: 720, path: 'vod/../../etc/passwd' }), /dot segment/);
  });
});

describe('GrantCache', () => {
  it('when two viewers play the same manifest in one slot, then the URL is signed once; a new slot signs again', () => {
    let clock = 1_000_000; // 1000 s: inside the slot that starts at 990 s
    const cache = new GrantCache(() => clock);
    let signatures = 0;
    const issuedAts: number[] = [];
    const sign = (issuedAt: number) => {
      issuedAts.push(issuedAt);
      return { url: `url-${(signatures += 1)}` };
    };
    assert.deepEqual(cache.issue('cdn /a/m.m3u8', sign), { issuedAt: 990, grant: { url: 'url-1' } });
    clock += 19_000; // 1019 s: still the slot of 990 s
    assert.equal(cache.issue('cdn /a/m.m3u8', sign).grant.url, 'url-1');
    assert.equal(cache.issue('cdn /b/m.m3u8', sign).grant.url, 'url-2');
    clock += 1_000; // 1020 s: the next slot
    assert.deepEqual(cache.issue('cdn /a/m.m3u8', sign), { issuedAt: 1020, grant: { url: 'url-3' } });
    assert.equal(signatures, 3);
    assert.deepEqual(issuedAts, [990, 990, 1020], 'each grant is signed with its slot start as the issue time');
  });
});
