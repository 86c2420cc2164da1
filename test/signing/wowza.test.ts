import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createWowzaSigner, wowzaHash, wowzaStringToHash, wowzaTokenParams } from '../../api/signing/wowza.ts';
import { EXPIRES_AT, fixture, NOT_BEFORE, param, playbackRequest, queryOf, sh } from './helpers.ts';

/** Independent hash: openssl digest, standard base64, `+/`→`-_`, padding kept. */
const opensslWowza = (bits: 256 | 384 | 512, text: string): string =>
  sh(`openssl dgst -sha${bits} -binary | openssl base64 -A | tr +/ -_`, text);

describe('Wowza SecureToken v2: string to hash and hash', () => {
  const input = {
    contentPath: 'vod/_definst_/mp4:sample.mp4',
    secret: 'mySharedSecret',
    startTime: 1767200000,
    endTime: 1767290400,
    customParams: { CDNRegion: 'eu', zone: 'b' },
    clientIp: '192.168.1.2',
  };

  test('when secret, IP and params are sorted, then the bare secret and IP sit where they sort (uppercase first)', () => {
    assert.equal(
      wowzaStringToHash(input),
      'vod/_definst_/mp4:sample.mp4?192.168.1.2&mySharedSecret&wowzatokenCDNRegion=eu&wowzatokenendtime=1767290400&wowzatokenstarttime=1767200000&wowzatokenzone=b',
    );
  });

  test('when hashing with SHA-256/384/512, then the hash equals openssl with +/ mapped to -_ and = padding kept', () => {
    for (const bits of [256, 384, 512] as const) {
      const hash = wowzaHash({ ...input, hashAlgorithm: `SHA${bits}` });
      assert.equal(hash, opensslWowza(bits, wowzaStringToHash(input)));
    }
    assert.ok(wowzaHash(input).endsWith('='), 'SHA-256 base64 ends with one "=" that must be kept');
    assert.ok(wowzaHash({ ...input, hashAlgorithm: 'SHA512' }).endsWith('=='));
  });

  test('when building parameters, then the secret and IP are never sent and the hash is <prefix>hash', () => {
    const params = wowzaTokenParams({ ...input, prefix: 'st' });
    assert.deepEqual(
      params.map(([name]) => name),
      ['ststarttime', 'stendtime', 'stCDNRegion', 'stzone', 'sthash'],
    );
    assert.ok(!params.some(([, value]) => value.includes('mySharedSecret') || value.includes('192.168.1.2')));
  });

  test('when a custom parameter would shadow starttime/endtime/hash or end precedes start, then it throws', () => {
    assert.throws(() => wowzaStringToHash({ ...input, customParams: { hash: 'x' } }), /starttime\/endtime\/hash/);
    assert.throws(() => wowzaStringToHash({ ...input, startTime: 5, endTime: 5 }), /after startTime/);
  });
});

interface WowzaDoc {
  published_example: { shared_secret: string; string_to_hash_alphabetical: string; published_hash: string };
}

describe('Wowza SecureToken v2: the published doc example (known not to reproduce)', () => {
  const doc = fixture<WowzaDoc>('wowza-securetoken-doc-example.UNVERIFIED.json').published_example;
  const docInput = {
    contentPath: 'vod/_myInstance_/sample.mp4',
    secret: doc.shared_secret,
    endTime: 1500000000,
    customParams: { CustomParameter: 'abcdef' },
  };

  test('when given the doc inputs, then our string to hash equals the doc string byte for byte', () => {
    assert.equal(wowzaStringToHash(docInput), doc.string_to_hash_alphabetical);
  });

  test('when given the doc inputs, then our hash is reproduced by openssl and differs from the inconsistent published hash', () => {
    const ours = wowzaHash(docInput);
    assert.equal(ours, opensslWowza(256, doc.string_to_hash_alphabetical));
    assert.notEqual(ours, doc.published_hash.split(' ')[0]);
  });
});

describe('Wowza playback UrlSigner', () => {
  const request = playbackRequest({
    manifestPath: '/vod/_definst_/mp4:title-42.mp4/playlist.m3u8',
    scopePath: '/vod/_definst_/mp4:title-42.mp4/',
  });
  const signer = createWowzaSigner({
    prefix: 'wowzatoken',
    hashAlgorithm: 'SHA256',
    bindClientIp: false,
    keys: [{ id: 'w1', active: true, material: 'mySharedSecret' }],
  });
  const url = signer.sign(request);
  const st = NOT_BEFORE.getTime() / 1000;
  const et = EXPIRES_AT.getTime() / 1000;

  test('when signing playback, then the URL is <stream path>/playlist.m3u8 with starttime, endtime and hash', () => {
    assert.ok(url.startsWith('https://cdn.example.com/vod/_definst_/mp4:title-42.mp4/playlist.m3u8?wowzatokenstarttime='), url);
    assert.deepEqual([...queryOf(url).keys()], ['wowzatokenstarttime', 'wowzatokenendtime', 'wowzatokenhash']);
    assert.equal(param(url, 'wowzatokenstarttime'), String(st));
    assert.equal(param(url, 'wowzatokenendtime'), String(et));
  });

  test('when signing playback, then the hash covers the stream path without the file name (openssl)', () => {
    const text = `vod/_definst_/mp4:title-42.mp4?mySharedSecret&wowzatokenendtime=${et}&wowzatokenstarttime=${st}`;
    assert.equal(param(url, 'wowzatokenhash'), opensslWowza(256, text));
  });

  test('when a chunklist in the same stream is signed, then it gets the identical parameters', () => {
    const chunklist = signer.sign({ ...request, manifestPath: '/vod/_definst_/mp4:title-42.mp4/chunklist_w1.m3u8' });
    assert.equal(chunklist.slice(chunklist.indexOf('?')), url.slice(url.indexOf('?')));
  });

  test('when the manifest sits in a subdirectory of the stream path, then signing throws', () => {
    assert.throws(() => signer.sign({ ...request, manifestPath: '/vod/_definst_/mp4:title-42.mp4/x/playlist.m3u8' }), /directly inside/);
  });

  test('when IP binding is on, then the bare IP is hashed and a request without IP throws', () => {
    const bound = createWowzaSigner({
      prefix: 'wowzatoken',
      hashAlgorithm: 'SHA512',
      bindClientIp: true,
      keys: [{ id: 'w1', active: true, material: 'mySharedSecret' }],
    });
    const signed = bound.sign({ ...request, clientIp: '203.0.113.7' });
    const text = `vod/_definst_/mp4:title-42.mp4?203.0.113.7&mySharedSecret&wowzatokenendtime=${et}&wowzatokenstarttime=${st}`;
    assert.equal(param(signed, 'wowzatokenhash'), opensslWowza(512, text));
    assert.throws(() => bound.sign(request), /clientIp/);
  });
});
