import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { appendQuery, validateSignRequest } from '../../api/signing/request.ts';
import { playbackRequest } from './helpers.ts';

describe('sign request validation', () => {
  test('when the request is well formed, then it passes', () => {
    assert.doesNotThrow(() => validateSignRequest(playbackRequest()));
  });

  test('when the manifest is outside the scope or is the scope itself, then it is rejected', () => {
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/other/master.m3u8' })), /not a file below scopePath/);
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/' })), /not a file below scopePath/);
  });

  test('when paths are not percent-encoded or contain a wildcard, then they are rejected rather than re-encoded', () => {
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/my file.m3u8' })), /manifestPath/);
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/m.m3u8?x=1' })), /manifestPath/);
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/t\u00e9.m3u8' })), /manifestPath/);
    assert.throws(() => validateSignRequest(playbackRequest({ scopePath: '/vod/*/', manifestPath: '/vod/*/m.m3u8' })), /scopePath/);
    assert.throws(() => validateSignRequest(playbackRequest({ scopePath: '/vod/title-42' })), /scopePath/);
  });

  test('when the origin has a path or trailing slash, then it is rejected', () => {
    assert.throws(() => validateSignRequest(playbackRequest({ origin: 'https://cdn.example.com/' })), /origin/);
    assert.throws(() => validateSignRequest(playbackRequest({ origin: 'cdn.example.com' })), /origin/);
  });

  test('when notBefore is not at least a second before expiresAt, then it is rejected', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    assert.throws(() => validateSignRequest(playbackRequest({ notBefore: at, expiresAt: at })), /before expiresAt/);
    assert.throws(() => validateSignRequest(playbackRequest({ expiresAt: new Date(Number.NaN) })), /valid dates/);
  });
});

describe('appendQuery', () => {
  test('when the URL has no query, a query, or a dangling "?", then parameters are joined without touching the URL', () => {
    assert.equal(appendQuery('https://x/a%20b', [['a', '1']]), 'https://x/a%20b?a=1');
    assert.equal(appendQuery('https://x/a?b=2', [['a', '1'], ['c', '3']]), 'https://x/a?b=2&a=1&c=3');
    assert.equal(appendQuery('https://x/a?', [['a', '1']]), 'https://x/a?a=1');
  });
});
