import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { appendQuery, epochSeconds, requireClientIp, validateSignRequest } from '../../api/signing/request.ts';
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
    assert.throws(
      () => validateSignRequest(playbackRequest({ scopePath: 'vod/title-42/', manifestPath: 'vod/title-42/master.m3u8' })),
      /scopePath/,
    );
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/a%2.m3u8' })), /manifestPath/);
    assert.throws(() => validateSignRequest(playbackRequest({ manifestPath: '/vod/title-42/a%zz.m3u8' })), /manifestPath/);
  });

  test('when paths carry valid percent-escapes, then they pass unchanged', () => {
    const request = playbackRequest({ scopePath: '/vod/title%2042/', manifestPath: '/vod/title%2042/master%2A.m3u8' });
    assert.doesNotThrow(() => validateSignRequest(request));
  });

  test('when the origin has a path or trailing slash, then it is rejected', () => {
    assert.throws(() => validateSignRequest(playbackRequest({ origin: 'https://cdn.example.com/' })), /origin/);
    assert.throws(() => validateSignRequest(playbackRequest({ origin: 'cdn.example.com' })), /origin/);
    assert.throws(() => validateSignRequest(playbackRequest({ origin: 'x-https://cdn.example.com' })), /origin/);
  });

  test('when the origin is plain http with a port (an edge on a private network), then it passes', () => {
    assert.doesNotThrow(() => validateSignRequest(playbackRequest({ origin: 'http://127.0.0.1:8080' })));
  });

  test('when notBefore is not at least a second before expiresAt, then it is rejected', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    assert.throws(() => validateSignRequest(playbackRequest({ notBefore: at, expiresAt: at })), /before expiresAt/);
    assert.throws(() => validateSignRequest(playbackRequest({ expiresAt: new Date(Number.NaN) })), /valid dates/);
    assert.throws(() => validateSignRequest(playbackRequest({ notBefore: new Date(Number.NaN) })), /valid dates/);
  });

  test('when notBefore and expiresAt differ by less than a second within one second, then it is rejected (tokens carry whole seconds)', () => {
    const notBefore = new Date('2026-01-01T00:00:00.100Z');
    const expiresAt = new Date('2026-01-01T00:00:00.900Z');
    assert.throws(() => validateSignRequest(playbackRequest({ notBefore, expiresAt })), /before expiresAt/);
  });

  test('when notBefore is one whole second before expiresAt, then it passes', () => {
    const notBefore = new Date('2026-01-01T00:00:00.900Z');
    const expiresAt = new Date('2026-01-01T00:00:01.000Z');
    assert.doesNotThrow(() => validateSignRequest(playbackRequest({ notBefore, expiresAt })));
  });
});

describe('epochSeconds', () => {
  test('when a date has milliseconds, then they are dropped (rounded down)', () => {
    assert.equal(epochSeconds(new Date('2026-01-01T00:00:01.999Z')), Date.UTC(2026, 0, 1) / 1000 + 1);
    assert.equal(epochSeconds(new Date('2026-01-01T00:00:00.000Z')), Date.UTC(2026, 0, 1) / 1000);
  });
});

describe('requireClientIp', () => {
  test('when the request carries the client address, then it is returned', () => {
    assert.equal(requireClientIp(playbackRequest({ clientIp: '203.0.113.7' }), 'akamai'), '203.0.113.7');
  });

  test('when the address is missing or empty, then signing refuses and names the scheme', () => {
    assert.throws(() => requireClientIp(playbackRequest(), 'akamai'), /^Error: akamai signer .*no clientIp/);
    assert.throws(() => requireClientIp(playbackRequest({ clientIp: '' }), 'wowza'), /^Error: wowza signer .*no clientIp/);
  });
});

describe('appendQuery', () => {
  test('when the URL has no query, a query, or a dangling "?", then parameters are joined without touching the URL', () => {
    assert.equal(appendQuery('https://x/a%20b', [['a', '1']]), 'https://x/a%20b?a=1');
    assert.equal(
      appendQuery('https://x/a?b=2', [
        ['a', '1'],
        ['c', '3'],
      ]),
      'https://x/a?b=2&a=1&c=3',
    );
    assert.equal(appendQuery('https://x/a?', [['a', '1']]), 'https://x/a?a=1');
    assert.equal(appendQuery('https://x/a?b=2&', [['a', '1']]), 'https://x/a?b=2&a=1');
  });

  test('when there are no parameters, then the URL is returned as it is', () => {
    assert.equal(appendQuery('https://x/a', []), 'https://x/a');
    assert.equal(appendQuery('https://x/a?b=2', []), 'https://x/a?b=2');
  });
});
