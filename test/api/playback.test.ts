// Component tests of POST /v1/playback-urls on the embedded catalog: the real app in-process,
// real signed client JWTs, every decision and every error code a client can see.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ANY_LAG, fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import type { PlaybackCookie } from '../../api/delivery/delivery.ts';

let node: TestNode;
before(async () => {
  // Pin the CDN draw to the first CDN (CloudFront) so URLs are predictable.
  node = await startTestNode({ random: () => 0 });
});
after(() => node.close());

async function playAs(
  userId: string,
  body: Record<string, unknown>,
): Promise<{ status: number; body: Record<string, unknown>; response: Response }> {
  const response = await node.play(body, node.tokenFor(userId));
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, response };
}

describe('when an entitled viewer asks to play', () => {
  it('then the answer is the manifest URL and CloudFront signed cookies for the best rendition the device may get', async () => {
    const { status, body, response } = await playAs('demo-user', { contentId: 'tt-demo-0001', device: 'web' });
    assert.equal(status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(body).sort(), ['cdn', 'cookies', 'delivery', 'expiresAt', 'protocol', 'quality', 'url']);
    assert.equal(body.cdn, 'cloudfront');
    assert.equal(body.delivery, 'cookie');
    assert.equal(body.protocol, 'dash');
    assert.equal(body.quality, '1080p');
    // In cookie mode the URL carries no token: the cookies authorize it and every segment below it.
    assert.equal(body.url, 'https://d111111abcdef8.cloudfront.net/vod/tt-demo-0001/dash/1080p/manifest.mpd');
    const cookies = body.cookies as PlaybackCookie[];
    assert.deepEqual(
      cookies.map((cookie) => cookie.name),
      ['CloudFront-Policy', 'CloudFront-Signature', 'CloudFront-Key-Pair-Id', 'CloudFront-Hash-Algorithm'],
    );
    for (const cookie of cookies) {
      assert.equal(cookie.domain, 'd111111abcdef8.cloudfront.net', 'no cookie domain configured: host-only cookies for the CDN');
      assert.equal(cookie.path, '/vod/tt-demo-0001/dash/1080p/');
      assert.equal(cookie.expiresAt, body.expiresAt);
      assert.equal(cookie.secure, true);
      assert.equal(cookie.httpOnly, true);
    }
    const value = (name: string) => cookies.find((cookie) => cookie.name === name)?.value ?? '';
    assert.equal(value('CloudFront-Key-Pair-Id'), 'KDEMOKEY1');
    assert.equal(value('CloudFront-Hash-Algorithm'), 'SHA256');
    const policy = JSON.parse(
      Buffer.from(value('CloudFront-Policy').replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64').toString(),
    ) as {
      Statement: {
        Resource: string;
        Condition: { DateLessThan: { 'AWS:EpochTime': number }; DateGreaterThan?: { 'AWS:EpochTime': number } };
      }[];
    };
    // One token covers the manifest and every segment below it, and is back-dated for clock skew.
    assert.equal(policy.Statement[0]?.Resource, 'https://d111111abcdef8.cloudfront.net/vod/tt-demo-0001/dash/1080p/*');
    const expiresAt = Date.parse(String(body.expiresAt));
    assert.equal(policy.Statement[0]?.Condition.DateLessThan['AWS:EpochTime'], expiresAt / 1000);
    const start = policy.Statement[0]?.Condition.DateGreaterThan?.['AWS:EpochTime'] ?? Infinity;
    assert.ok(start <= Date.now() / 1000 - 290, 'start time is back-dated by the clock-skew allowance');
    assert.ok(expiresAt - Date.now() > 5.9 * 3600_000 && expiresAt - Date.now() <= 6 * 3600_000);
    // The API's host (127.0.0.1) is not within the cookie's domain: a browser would refuse it, so none is set.
    assert.equal(response.headers.get('set-cookie'), null);
  });

  const decisions: { user: string; body: Record<string, unknown>; protocol: string; quality: string; why: string }[] = [
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'tv' },
      protocol: 'dash',
      quality: '2160p',
      why: 'an owned UHD title on a TV plays in UHD',
    },
    { user: 'demo-user', body: { contentId: 'tt-demo-0001', device: 'ios' }, protocol: 'hls', quality: '2160p', why: 'iOS gets HLS' },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'tv', quality: '720p' },
      protocol: 'dash',
      quality: '720p',
      why: 'the requested ceiling is honoured',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'web', protocol: 'hls' },
      protocol: 'hls',
      quality: '1080p',
      why: 'an explicit protocol the device plays is honoured',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0002', device: 'tv' },
      protocol: 'dash',
      quality: '1080p',
      why: 'a live rental plays at its ceiling',
    },
    {
      user: 'sd-buyer',
      body: { contentId: 'tt-demo-0001', device: 'tv' },
      protocol: 'dash',
      quality: '480p',
      why: 'an SD purchase caps the quality',
    },
    {
      user: 'premium-user',
      body: { contentId: 'tt-demo-0003', device: 'web' },
      protocol: 'hls',
      quality: '720p',
      why: 'an HLS-only title falls back from the web default DASH',
    },
    {
      user: 'mobile-user',
      body: { contentId: 'tt-demo-0002', device: 'android' },
      protocol: 'dash',
      quality: '480p',
      why: 'the mobile plan plays SD on phones',
    },
  ];
  for (const decision of decisions) {
    it(`then ${decision.why}`, async () => {
      const { status, body } = await playAs(decision.user, decision.body);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.protocol, decision.protocol);
      assert.equal(body.quality, decision.quality);
    });
  }
});

describe('when the viewer may not play', () => {
  const denials: { user: string; body: Record<string, unknown>; status: number; code: string; why: string; detail?: string }[] = [
    {
      user: 'nobody',
      body: { contentId: 'tt-demo-0001', device: 'web' },
      status: 403,
      code: 'NOT_PURCHASED',
      why: 'nothing bought',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0004', device: 'web' },
      status: 403,
      code: 'RENTAL_EXPIRED',
      why: 'an expired rental',
    },
    {
      user: 'lapsed-user',
      body: { contentId: 'tt-demo-0001', device: 'web' },
      status: 403,
      code: 'SUBSCRIPTION_EXPIRED',
      why: 'a lapsed plan',
    },
    {
      user: 'mobile-user',
      body: { contentId: 'tt-demo-0002', device: 'tv' },
      status: 403,
      code: 'DEVICE_NOT_ALLOWED',
      why: 'a phone-only plan on a TV',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'legacy-stb' },
      status: 403,
      code: 'DEVICE_NOT_ALLOWED',
      why: 'a disabled device class',
    },
    {
      user: 'sd-buyer',
      body: { contentId: 'tt-demo-0001', device: 'web', quality: '360p' },
      status: 403,
      code: 'QUALITY_NOT_AVAILABLE',
      why: 'no rendition under the ceiling',
      detail:
        'Nothing of "tt-demo-0001" in dash is at or under the requested 360p; the best this viewer may get is 480p: ask for 480p or auto',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-nope', device: 'web' },
      status: 404,
      code: 'CONTENT_NOT_FOUND',
      why: 'unknown content',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'fridge' },
      status: 422,
      code: 'UNKNOWN_DEVICE',
      why: 'unknown device',
    },
    {
      user: 'demo-user',
      body: { contentId: 'tt-demo-0001', device: 'ios', protocol: 'dash' },
      status: 422,
      code: 'PROTOCOL_NOT_SUPPORTED',
      why: 'DASH on iOS',
      detail: 'Device class "ios" plays hls, not dash; ask for hls, or leave protocol out',
    },
    {
      user: 'premium-user',
      body: { contentId: 'tt-demo-0003', device: 'tv', protocol: 'dash' },
      status: 422,
      code: 'PROTOCOL_NOT_AVAILABLE',
      why: 'DASH of an HLS-only title',
      detail: '"tt-demo-0003" is packaged in hls only, and dash was asked for',
    },
  ];
  for (const denial of denials) {
    it(`then ${denial.why} → ${denial.status} ${denial.code}`, async () => {
      const { status, body, response } = await playAs(denial.user, denial.body);
      assert.equal(status, denial.status);
      assert.equal(body.code, denial.code);
      assert.equal(body.status, denial.status);
      assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      // Where the refusal can say what is possible instead, it does.
      if (denial.detail !== undefined) assert.equal(body.detail, denial.detail);
    });
  }
});

describe('when the request is bad', () => {
  const badBodies: { body: unknown; code: string; status: number; why: string; messages?: string[] }[] = [
    {
      body: { contentId: 42, device: 'web' },
      status: 422,
      code: 'INVALID_REQUEST',
      why: 'a number for contentId',
      messages: ['contentId must be a string'],
    },
    { body: { device: 'web' }, status: 422, code: 'INVALID_REQUEST', why: 'no contentId', messages: ['contentId is required'] },
    { body: {}, status: 422, code: 'INVALID_REQUEST', why: 'an empty object', messages: ['contentId is required', 'device is required'] },
    {
      body: { contentId: 'tt-demo-0001', device: 'web', quality: '8k' },
      status: 422,
      code: 'INVALID_REQUEST',
      why: 'an unknown quality',
      messages: ['quality must be one of auto, 2160p, 1440p, 1080p, 720p, 480p, 360p, 240p'],
    },
    {
      body: { contentId: 'tt-demo-0001', device: 'web', protocol: 'rtmp' },
      status: 422,
      code: 'INVALID_REQUEST',
      why: 'an unknown protocol',
      messages: ['protocol must be one of hls, dash'],
    },
    { body: { contentId: '../../etc/passwd', device: 'web' }, status: 422, code: 'INVALID_REQUEST', why: 'a path-traversal contentId' },
    { body: { contentId: "tt' OR '1'='1", device: 'web' }, status: 422, code: 'INVALID_REQUEST', why: 'an SQL-looking contentId' },
    {
      body: { contentId: 'tt-demo-0001', device: 'WEB; DROP' },
      status: 422,
      code: 'INVALID_REQUEST',
      why: 'a device name with odd characters',
    },
    { body: ['tt-demo-0001'], status: 422, code: 'INVALID_REQUEST', why: 'an array body', messages: ['the body must be a JSON object'] },
    { body: '{"contentId": "tt-demo-0001", ', status: 400, code: 'MALFORMED_JSON', why: 'truncated JSON' },
    {
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web', pad: 'x'.repeat(20_000) }),
      status: 413,
      code: 'BODY_TOO_LARGE',
      why: 'a huge body',
    },
  ];
  for (const bad of badBodies) {
    it(`then ${bad.why} → ${bad.status} ${bad.code}`, async () => {
      const response = await node.play(bad.body);
      assert.equal(response.status, bad.status);
      const body = (await response.json()) as { code: string; detail?: string; errors?: { path: string; message: string }[] };
      assert.equal(body.code, bad.code);
      if (bad.code === 'INVALID_REQUEST') assert.ok(Array.isArray(body.errors) && body.errors.length > 0);
      // Plain words that name the field, never zod's defaults ("Invalid input: expected string…").
      for (const error of body.errors ?? []) assert.doesNotMatch(error.message, /^Invalid|expected|received/, error.message);
      if (bad.messages !== undefined) {
        assert.deepEqual(
          body.errors?.map((error) => error.message),
          bad.messages,
        );
        assert.equal(body.detail, bad.messages.join('; '));
      }
    });
  }

  it('then a non-JSON content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.tokenFor('demo-user')}`, 'content-type': 'text/plain' },
      body: 'contentId=tt-demo-0001',
    });
    assert.equal(response.status, 415);
    assert.equal(((await response.json()) as { code: string }).code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`then a body that is not the ${encoding} its Content-Encoding claims → 400 MALFORMED_JSON, never a 500`, async () => {
      const response = await fetch(`${node.baseUrl}/v1/playback-urls`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${node.tokenFor('demo-user')}`,
          'content-type': 'application/json',
          'content-encoding': encoding,
        },
        body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { code: string; detail: string };
      assert.equal(body.code, 'MALFORMED_JSON');
      assert.equal(body.detail, 'The body does not decode as its Content-Encoding says');
    });
  }

  it('then no token → 401 TOKEN_MISSING with a Bearer challenge, before the body is even read', async () => {
    const response = await node.play('{ not json', null);
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="st-api"');
    assert.equal(((await response.json()) as { code: string }).code, 'TOKEN_MISSING');
  });

  it('then a GET → 405 METHOD_NOT_ALLOWED with Allow: POST, OPTIONS, and an unknown path → 404 NOT_FOUND', async () => {
    const get = await fetch(`${node.baseUrl}/v1/playback-urls`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST, OPTIONS');
    const missing = await fetch(`${node.baseUrl}/v1/nothing-here`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'NOT_FOUND');
  });

  it('then no error body carries a stack trace or an internal message, and no answer may be sniffed', async () => {
    const response = await node.play('{"contentId":');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await node.play({ contentId: 'tt-demo-0001', device: 'web' })).headers.get('x-content-type-options'), 'nosniff');
    const text = await response.text();
    assert.doesNotMatch(text, /at .*\.ts:\d+|SyntaxError|Unexpected end/);
  });
});

describe('when observing the node', () => {
  it('then /health/live answers without touching anything, and /health/deep reads well in Consul', async () => {
    const live = await fetch(`${node.baseUrl}/health/live`);
    assert.equal(live.status, 200);
    // Lag may warn after one stall of a busy machine; every other probe must pass.
    const deep = await fetchDeepHealth(node.baseUrl);
    assert.equal(statusApartFromLag(deep), 200, deep.body);
    assert.match(deep.body, new RegExp(String.raw`^(?:ok|warn) node=serving mysql=embedded redis=off keys=ok\(4\) ${ANY_LAG}$`));
  });

  it('then /metrics counts issued URLs by cdn/protocol/quality and denials by code', async () => {
    await playAs('demo-user', { contentId: 'tt-demo-0001', device: 'ios' });
    await playAs('nobody', { contentId: 'tt-demo-0001', device: 'ios' });
    // Refused before the use case is reached (no token, wrong method): counted as denials too.
    await fetch(`${node.baseUrl}/v1/playback-urls`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    await fetch(`${node.baseUrl}/v1/playback-urls`);
    const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
    assert.match(text, /st_api_playback_urls_issued_total\{cdn="cloudfront",protocol="hls",quality="2160p"\} [1-9]/);
    assert.match(text, /st_api_playback_denials_total\{code="NOT_PURCHASED"\} [1-9]/);
    assert.match(text, /st_api_playback_denials_total\{code="TOKEN_MISSING"\} [1-9]/);
    assert.match(text, /st_api_playback_denials_total\{code="METHOD_NOT_ALLOWED"\} [1-9]/);
    assert.match(text, /st_api_http_request_duration_seconds_count\{method="POST",route="\/v1\/playback-urls",status="200"\} [1-9]/);
  });
});

// The real signal, and the process exiting after its in-flight plays, are test/api/drain.test.ts's.
describe('when startDraining() is called (what SIGTERM calls first)', () => {
  it('then /health/deep turns critical with node=draining while plays are still served', async () => {
    const draining = await startTestNode();
    try {
      draining.service.startDraining();
      const deep = await fetch(`${draining.baseUrl}/health/deep`);
      assert.equal(deep.status, 503);
      assert.match(await deep.text(), /^fail node=draining /);
      assert.equal((await draining.play({ contentId: 'tt-demo-0001', device: 'web' })).status, 200);
    } finally {
      await draining.close();
    }
  });
});
