// Component tests of delivery modes: where the token travels so it reaches every request a player
// makes. The real app in-process; the tokens are recomputed here from the edges' documented rules.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

const NGINX_SECRET = 'edge-secret-for-tests';
const AKAMAI_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

let node: TestNode;
before(async () => {
  node = await startTestNode({
    overrides: {
      cors: { allowedOrigins: ['https://www.example.com'] },
      cdns: [
        {
          name: 'nginx',
          origin: 'https://edge.example.com',
          weight: 1,
          signer: { type: 'nginx', keys: [{ id: 'n1', active: true, secret: NGINX_SECRET }] },
        },
        {
          name: 'akamai',
          origin: 'https://cdn.example.com',
          weight: 1,
          delivery: { cookieDomain: 'example.com' },
          signer: { type: 'akamai', keys: [{ id: 'a1', active: true, secret: AKAMAI_KEY }] },
        },
      ],
    },
    // The first CDN for draws below 0.5, the second above.
    random: () => draw,
  });
});
after(() => node.close());
let draw = 0;

interface Answer {
  status: number;
  setCookie: string[];
  body: {
    url: string;
    delivery: string;
    expiresAt: string;
    cookies?: { name: string; value: string; domain: string; path: string; secure: boolean; httpOnly: boolean }[];
  };
}

/** POST with a chosen Host header (fetch cannot set one), as a browser on that name would send it. */
/**
 * Plays tt-demo-0001 on the web through the API at `host`, the CDN chosen by `cdnDraw` (the first CDN
 * below 0.5, the second above); `extra` adds to the request body.
 */
function playDemoTitle(cdnDraw: number, host: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  draw = cdnDraw;
  return playWithHost(host, { contentId: 'tt-demo-0001', device: 'web', ...extra });
}

function playWithHost(host: string, body: Record<string, unknown>): Promise<Answer> {
  const payload = JSON.stringify(body);
  const url = new URL('/v1/playback-urls', node.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          host,
          authorization: `Bearer ${node.tokenFor('demo-user')}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        signal: AbortSignal.timeout(10_000),
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [], body: JSON.parse(text) as Answer['body'] }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('when the CDN is an nginx edge (path token, its default)', () => {
  it('then the token is a path segment ahead of the media path, hashing the expiry and the manifest directory', async () => {
    const { status, body, setCookie } = await playDemoTitle(0, 'play.example.com', { protocol: 'hls' });
    assert.equal(status, 200);
    assert.equal(body.delivery, 'path-token');
    assert.equal(body.cookies, undefined);
    assert.deepEqual(setCookie, []);
    const match = /^https:\/\/edge\.example\.com\/t\/([A-Za-z0-9_-]{22})\/(\d+)\/vod\/tt-demo-0001\/hls\/1080p\/master\.m3u8$/.exec(
      body.url,
    );
    assert.ok(match, body.url);
    const [, hash, expires] = match;
    // nginx keeps a link valid through its expiry second, so the token says one second less.
    assert.equal(Number(expires), Date.parse(body.expiresAt) / 1000 - 1);
    const expected = createHash('md5').update(`${expires}/vod/tt-demo-0001/hls/1080p/ ${NGINX_SECRET}`).digest('base64url');
    assert.equal(hash, expected);
    // A relative URI resolved from the manifest keeps the token: what a player does next.
    assert.match(
      new URL('1080p/index.m3u8', body.url).pathname,
      /^\/t\/[\w-]{22}\/\d+\/vod\/tt-demo-0001\/hls\/1080p\/1080p\/index\.m3u8$/,
    );
  });
});

describe('when the CDN takes cookies and a cookie domain is configured', () => {
  it('then the API, on a host within that domain, sets the cookies; the JSON carries them for native apps', async () => {
    const { status, body, setCookie } = await playDemoTitle(0.9, 'play.example.com', { protocol: 'dash' });
    assert.equal(status, 200);
    assert.equal(body.delivery, 'cookie');
    assert.equal(body.url, 'https://cdn.example.com/vod/tt-demo-0001/dash/1080p/manifest.mpd');
    assert.equal(body.cookies?.length, 1);
    const [cookie] = body.cookies ?? [];
    assert.equal(cookie?.name, '__token__');
    assert.equal(cookie?.domain, 'example.com');
    assert.equal(cookie?.path, '/vod/tt-demo-0001/dash/1080p/');
    assert.equal(cookie?.secure, true);
    assert.equal(cookie?.httpOnly, true);
    const fields = new Map((cookie?.value ?? '').split('~').map((field) => field.split('=', 2) as [string, string]));
    assert.equal(fields.get('acl'), '/vod/tt-demo-0001/dash/1080p/*');
    assert.equal(fields.get('exp'), String(Date.parse(body.expiresAt) / 1000));
    const signed = (cookie?.value ?? '').replace(/~hmac=[0-9a-f]+$/, '');
    assert.equal(fields.get('hmac'), createHmac('sha256', Buffer.from(AKAMAI_KEY, 'hex')).update(signed).digest('hex'));
    // AWS and Akamai advise session cookies: no Expires or Max-Age.
    assert.deepEqual(setCookie, [
      `__token__=${cookie?.value}; Domain=example.com; Path=/vod/tt-demo-0001/dash/1080p/; Secure; HttpOnly; SameSite=Lax`,
    ]);
  });

  it('then on a host outside that domain no cookie is set (a browser would refuse it), but the JSON still carries them', async () => {
    const { status, body, setCookie } = await playDemoTitle(0.9, 'play.other-site.test');
    assert.equal(status, 200);
    assert.equal(body.cookies?.length, 1);
    assert.deepEqual(setCookie, []);
  });
});

describe('when a web app on another origin calls the API (CORS)', () => {
  const preflight = (origin: string) =>
    fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      signal: AbortSignal.timeout(10_000),
    });
  it('then an allowed origin gets a preflight answer with credentials, so the browser keeps the cookies the API sets', async () => {
    const response = await preflight('https://www.example.com');
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://www.example.com');
    assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(response.headers.get('access-control-allow-methods'), 'POST');
    assert.equal(response.headers.get('access-control-allow-headers'), 'Authorization,Content-Type,X-Request-Id');
    assert.equal(response.headers.get('access-control-max-age'), '600');
    assert.match(response.headers.get('vary') ?? '', /\bOrigin\b/);
    const play = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: {
        origin: 'https://www.example.com',
        authorization: `Bearer ${node.tokenFor('demo-user')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(play.status, 200);
    assert.equal(play.headers.get('access-control-allow-origin'), 'https://www.example.com');
    assert.equal(play.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(play.headers.get('access-control-expose-headers'), 'Retry-After,X-Request-Id');
  });
  it('then any other origin gets no CORS header at all, and the browser keeps the answer from the page', async () => {
    const response = await preflight('https://evil.example.net');
    assert.deepEqual(
      [...response.headers.keys()].filter((name) => name.startsWith('access-control-')),
      [],
    );
    // Not 405: OPTIONS is a method the resource supports; the absent headers are the refusal.
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('allow'), 'POST, OPTIONS');
    // A cache between must not hand this answer to an allowed origin, nor the reverse.
    assert.match(response.headers.get('vary') ?? '', /\bOrigin\b/);
  });

  it('then a plain OPTIONS is 204 with Allow, and paths below the route get no preflight', async () => {
    const plain = await fetch(`${node.baseUrl}/v1/playback-urls`, { method: 'OPTIONS', signal: AbortSignal.timeout(10_000) });
    assert.equal(plain.status, 204);
    assert.equal(plain.headers.get('allow'), 'POST, OPTIONS');
    const below = await fetch(`${node.baseUrl}/v1/playback-urls/x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://www.example.com', 'access-control-request-method': 'POST' },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(below.status, 404);
    assert.equal(below.headers.get('access-control-allow-origin'), null);
  });
});

describe('when the delivery configuration is wrong', () => {
  const configWith = (cdn: Record<string, unknown>) => ({ ...embeddedDemo().rawConfig, cdns: [cdn] });
  const problems = (raw: unknown): string[] => {
    try {
      parseConfig(raw, {});
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };
  it('then a mode the signer cannot carry is named with the modes it can', () => {
    const raw = configWith({
      name: 'cf',
      origin: 'https://cdn.example.com',
      delivery: { mode: 'path-token' },
      signer: { type: 'wowza', keys: [{ id: 'w', active: true, secret: 's' }] },
    });
    assert.deepEqual(problems(raw), ['cdns.0.delivery.mode: the wowza signer supports query']);
  });
  it('then a cookie domain that is not the CDN host or a parent of it is refused', () => {
    const raw = configWith({
      name: 'ak',
      origin: 'https://cdn.example.com',
      delivery: { cookieDomain: 'example.org' },
      signer: { type: 'akamai', keys: [{ id: 'a', active: true, secret: AKAMAI_KEY }] },
    });
    assert.deepEqual(problems(raw), ["cdns.0.delivery.cookieDomain: must be the CDN's host or a parent of it (cdn.example.com)"]);
  });
  it("then binding tokens to the viewer's IP is refused at start-up (no play carries the address yet), for every signer that can", () => {
    const bound = [
      { type: 'akamai', bindClientIp: true, keys: [{ id: 'a', active: true, secret: AKAMAI_KEY }] },
      { type: 'wowza', bindClientIp: true, keys: [{ id: 'w', active: true, secret: 's' }] },
      { type: 'nginx', expression: '$secure_link_expires$scope$remote_addr $secret', keys: [{ id: 'n', active: true, secret: 's' }] },
    ];
    for (const signer of bound) {
      assert.deepEqual(problems(configWith({ name: 'x', origin: 'https://cdn.example.com', signer })), [
        "cdns.0.signer: binding tokens to the viewer's IP (bindClientIp, $remote_addr) is not supported yet: st-api does not carry the client address to the signer",
      ]);
    }
  });
  it('then each signer gets its documented default mode', () => {
    const config = parseConfig(embeddedDemo().rawConfig, {});
    assert.deepEqual(
      config.cdns.map((cdn) => `${cdn.signer.type}:${cdn.delivery.mode}`),
      ['cloudfront:cookie', 'akamai:cookie', 'nginx:path-token', 'wowza:query'],
    );
  });
});
