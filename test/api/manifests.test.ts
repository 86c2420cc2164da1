// Component tests of tokenized-manifest delivery: the real app in-process, a real HTTP origin on
// loopback that the test can slow down, break or take away.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createNginxSigner, DEFAULT_NGINX_EXPRESSION } from '../../api/signing/nginx-secure-link.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

const SECRET = 'edge-secret-for-manifest-tests';
const MANIFEST_KEY = 'manifest-route-key-of-at-least-32-bytes';
const MAX_BYTES = 64 * 1024;
const SEVEN_HOURS_MS = 7 * 3600_000;

const MASTER = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=854x480\n480p/index.m3u8\n';
const MEDIA = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\nseg-1.m4s\n#EXTINF:1,\nseg-2.m4s\n#EXT-X-ENDLIST\n';

/** The origin: counts requests per path, and can stall, fail or overflow on demand. */
const origin = {
  server: undefined as Server | undefined,
  url: '',
  hits: new Map<string, number>(),
  mode: 'ok' as 'ok' | 'error' | 'stall' | 'huge' | 'forbidden' | 'redirect',
};

let node: TestNode;
let pastNode: TestNode;

function config(manifestOrigin: string) {
  return {
    manifests: {
      publicUrl: 'https://play.example.com',
      keys: [{ id: 'm1', active: true, secret: MANIFEST_KEY }],
      fetchTimeoutMs: 300,
      maxBytes: MAX_BYTES,
      freshSeconds: 60,
      staleSeconds: 600,
    },
    cdns: [
      {
        name: 'nginx-q',
        origin: 'https://edge.example.com',
        delivery: { mode: 'tokenized-manifest', manifestOrigin },
        signer: { type: 'nginx', keys: [{ id: 'n1', active: true, secret: SECRET }] },
      },
    ],
  };
}

before(async () => {
  origin.server = createServer((req, res) => {
    const path = req.url ?? '';
    origin.hits.set(path, (origin.hits.get(path) ?? 0) + 1);
    if (origin.mode === 'stall') return; // never answers: the fetch deadline must end it
    if (origin.mode === 'error') return void res.writeHead(502).end('bad gateway');
    if (origin.mode === 'forbidden') return void res.writeHead(403).end('forbidden');
    if (origin.mode === 'redirect') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    if (origin.mode === 'huge') return void res.writeHead(200).end(`#EXTM3U\n${'#EXT-X-COMMENT\n'.repeat(MAX_BYTES / 10)}`);
    if (path.endsWith('/master.m3u8')) return void res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(MASTER);
    if (path.endsWith('/480p/index.m3u8')) return void res.writeHead(200).end(MEDIA);
    res.writeHead(404).end();
  }).listen(0, '127.0.0.1');
  await once(origin.server, 'listening');
  origin.url = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
  node = await startTestNode({ overrides: config(origin.url) });
  pastNode = await startTestNode({ overrides: config(origin.url), now: () => Date.now() - SEVEN_HOURS_MS });
});

after(async () => {
  await Promise.allSettled([node?.close(), pastNode?.close()]);
  origin.server?.closeAllConnections();
  origin.server?.close();
});

beforeEach(() => {
  origin.mode = 'ok';
});

/** A play through the tokenized CDN; the URL points at st-api, here reached on the test node's address. */
async function playUrl(on: TestNode, contentId = 'tt-demo-0001', userId = 'demo-user'): Promise<string> {
  const response = await on.play({ contentId, device: 'web', protocol: 'hls' }, on.tokenFor(userId));
  const body = (await response.json()) as { url: string; delivery: string };
  assert.equal(body.delivery, 'tokenized-manifest');
  assert.ok(body.url.startsWith('https://play.example.com/v1/manifests/nginx-q/m1/'), body.url);
  return node.baseUrl + new URL(body.url).pathname;
}

const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(10_000) });

async function problemOf(response: Response): Promise<{ status: number; code: string; retryAfter: string | null }> {
  const body = (await response.json()) as { code: string };
  return { status: response.status, code: body.code, retryAfter: response.headers.get('retry-after') };
}

describe('when a viewer plays through a CDN with tokenized-manifest delivery', () => {
  it('then the master comes from st-api unchanged (variants relative) and a variant carries the CDN token on every media URI', async () => {
    const url = await playUrl(node);
    const master = await get(url);
    assert.equal(master.status, 200);
    assert.match(master.headers.get('content-type') ?? '', /^application\/vnd\.apple\.mpegurl/);
    assert.equal(master.headers.get('cache-control'), 'private, max-age=60');
    assert.equal(master.headers.get('access-control-allow-origin'), '*');
    // fetch asks for gzip, as browsers and players do; the text arrives decompressed.
    assert.equal(master.headers.get('content-encoding'), 'gzip');
    assert.equal(master.headers.get('vary'), 'Accept-Encoding');
    assert.equal(await master.text(), MASTER);
    const identity = await new Promise<{ encoding: string | undefined; body: string }>((resolve, reject) => {
      request(url, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body }));
      })
        .on('error', reject)
        .end();
    });
    assert.deepEqual(identity, { encoding: undefined, body: MASTER }, 'a client that does not ask for gzip gets the text');

    // What a player does next: resolve the variant against the master's URL (it keeps st-api's path token).
    const variant = await get(new URL('480p/index.m3u8', url).href);
    assert.equal(variant.status, 200);
    const text = await variant.text();
    const expires = Number(url.split('/')[7]);
    const signer = createNginxSigner({
      expression: DEFAULT_NGINX_EXPRESSION,
      hashParam: 'md5',
      expiresParam: 'expires',
      keys: [{ id: 'n1', active: true, material: SECRET }],
    });
    const [[, md5], [, exp]] = signer.queryToken({
      origin: 'https://edge.example.com',
      manifestPath: '/vod/tt-demo-0001/hls/1080p/master.m3u8',
      scopePath: '/vod/tt-demo-0001/hls/1080p/',
      notBefore: new Date(0),
      expiresAt: new Date(expires * 1000),
    }) as [[string, string], [string, string]];
    const token = `md5=${md5}&expires=${exp}`;
    assert.equal(
      text,
      MEDIA.replace('URI="init.mp4"', `URI="https://edge.example.com/vod/tt-demo-0001/hls/1080p/480p/init.mp4?${token}"`)
        .replace('\nseg-1.m4s', `\nhttps://edge.example.com/vod/tt-demo-0001/hls/1080p/480p/seg-1.m4s?${token}`)
        .replace('\nseg-2.m4s', `\nhttps://edge.example.com/vod/tt-demo-0001/hls/1080p/480p/seg-2.m4s?${token}`),
    );
  });

  it('then many viewers asking at once cost the origin one fetch per manifest, and later ones are served from the cache', async () => {
    const url = await playUrl(node, 'tt-demo-0002');
    const path = '/vod/tt-demo-0002/hls/1080p/master.m3u8';
    const before = origin.hits.get(path) ?? 0;
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(url)));
    assert.deepEqual([...new Set(answers.map((answer) => answer.status))], [200]);
    assert.equal((origin.hits.get(path) ?? 0) - before, 1);
    assert.equal((await get(url)).status, 200);
    assert.equal((origin.hits.get(path) ?? 0) - before, 1);
    const metrics = await (await get(`${node.baseUrl}/metrics`)).text();
    assert.match(metrics, /st_api_manifest_cache_lookups_total\{cdn="nginx-q",result="hit"\} [1-9]/);
    assert.match(metrics, /st_api_manifest_requests_total\{cdn="nginx-q",result="served"\} [1-9]/);
  });
});

describe('when the manifest URL is not what st-api signed', () => {
  it('then a tampered hmac, a path outside the signed scope and an unknown key id are 403 MANIFEST_TOKEN_INVALID', async () => {
    const url = await playUrl(node);
    const parts = url.split('/');
    const hmac = parts[8] ?? '';
    const tampered = url.replace(hmac, `${hmac.startsWith('A') ? 'B' : 'A'}${hmac.slice(1)}`);
    for (const bad of [
      tampered,
      url.replace('/hls/1080p/', '/hls/2160p/'),
      url.replace('/tt-demo-0001/', '/tt-demo-0003/'),
      url.replace('/m1/', '/m9/'),
    ]) {
      const response = await get(bad);
      // Readable by any page: a web player must see the 403, not a CORS failure.
      assert.equal(response.headers.get('access-control-allow-origin'), '*');
      assert.deepEqual(await problemOf(response), { status: 403, code: 'MANIFEST_TOKEN_INVALID', retryAfter: null }, bad);
    }
  });

  it('then a URL issued more than its lifetime ago is 403 MANIFEST_TOKEN_EXPIRED', async () => {
    // Issued seven hours ago (URLs live six), presented now.
    const expired = await playUrl(pastNode);
    assert.deepEqual(await problemOf(await get(expired)), { status: 403, code: 'MANIFEST_TOKEN_EXPIRED', retryAfter: null });
  });

  it('then an unknown CDN, a non-manifest file or a dot segment is 404 NOT_FOUND, and the origin is never asked', async () => {
    const url = await playUrl(node);
    const hitsBefore = [...origin.hits.values()].reduce((a, b) => a + b, 0);
    for (const bad of [url.replace('/nginx-q/', '/other/'), url.replace('master.m3u8', 'seg-1.m4s')]) {
      assert.equal((await problemOf(await get(bad))).code, 'NOT_FOUND', bad);
    }
    // fetch() would resolve an encoded dot segment itself; a hostile client sends it as is.
    const raw = await new Promise<number>((resolve, reject) => {
      const target = new URL(url);
      request(
        { host: target.hostname, port: target.port, path: `${target.pathname.replace('/master.m3u8', '')}/%2e%2e/master.m3u8` },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
        .on('error', reject)
        .end();
    });
    assert.equal(raw, 404);
    // Percent-encoded segments are catalog paths too (encodeMediaPath writes them); one that is not
    // UTF-8 or hides a separator is refused as a path, never a 500.
    for (const segment of ['%ff', 'a%2Fb', '%5c']) {
      assert.equal((await problemOf(await get(url.replace('/master.m3u8', `/${segment}/master.m3u8`)))).code, 'NOT_FOUND', segment);
    }
    assert.equal(
      [...origin.hits.values()].reduce((a, b) => a + b, 0),
      hitsBefore,
    );
    const encoded = await get(url.replace('/master.m3u8', '/a%20b/master.m3u8'));
    assert.equal(encoded.status, 200, 'a well-formed encoded segment below the signed scope is a catalog path');
    await encoded.body?.cancel();
  });
});

describe('when the origin fails', () => {
  it('then a manifest the origin does not have is 404 MANIFEST_NOT_FOUND', async () => {
    const url = await playUrl(node);
    assert.equal((await problemOf(await get(new URL('720p/index.m3u8', url).href))).code, 'MANIFEST_NOT_FOUND');
  });

  it('then an answer over maxBytes is 502 MANIFEST_ORIGIN_INVALID', async () => {
    const url = await playUrl(node, 'tt-demo-0003', 'premium-user');
    origin.mode = 'huge';
    assert.deepEqual(await problemOf(await get(url)), {
      status: 502,
      code: 'MANIFEST_ORIGIN_INVALID',
      retryAfter: null,
    });
  });

  it('then an origin that refuses st-api (403) or redirects it elsewhere is 502 MANIFEST_ORIGIN_INVALID, never followed, never retried by players', async () => {
    const url = await playUrl(node, 'tt-demo-0003', 'premium-user');
    for (const mode of ['forbidden', 'redirect'] as const) {
      origin.mode = mode;
      assert.deepEqual(await problemOf(await get(url)), { status: 502, code: 'MANIFEST_ORIGIN_INVALID', retryAfter: null }, mode);
    }
  });

  it('then, with no copy cached, an origin that stalls or errors is 503 MANIFEST_ORIGIN_UNAVAILABLE with Retry-After, and health warns naming it', async () => {
    const url = await playUrl(node, 'tt-demo-0003', 'premium-user');
    for (const mode of ['stall', 'error'] as const) {
      origin.mode = mode;
      assert.deepEqual(await problemOf(await get(url)), { status: 503, code: 'MANIFEST_ORIGIN_UNAVAILABLE', retryAfter: '5' }, mode);
    }
    const health = await get(`${node.baseUrl}/health/deep`);
    assert.equal(health.status, 429);
    assert.match(await health.text(), / manifests=origin-down\(nginx-q:http-502\) /);
    origin.mode = 'ok';
    assert.equal((await get(url)).status, 200);
    assert.match(await (await get(`${node.baseUrl}/health/deep`)).text(), / manifests=ok\(\d+ cached\) /);
  });

  it('then a copy fetched earlier still answers while the origin is down (stale-if-error), counted as stale', async () => {
    let clock = Date.now();
    const staleNode = await startTestNode({
      overrides: { ...config(origin.url), manifests: { ...config(origin.url).manifests, freshSeconds: 1 } },
      now: () => clock,
    });
    try {
      const response = await staleNode.play({ contentId: 'tt-demo-0001', device: 'web', protocol: 'hls' }, staleNode.tokenFor('demo-user'));
      const url = staleNode.baseUrl + new URL(((await response.json()) as { url: string }).url).pathname;
      assert.equal((await get(url)).status, 200);
      clock += 5000; // past freshSeconds: the next request asks the origin again
      origin.mode = 'error';
      const stale = await get(url);
      assert.equal(stale.status, 200);
      assert.equal(await stale.text(), MASTER);
      assert.match(
        await (await get(`${staleNode.baseUrl}/metrics`)).text(),
        /st_api_manifest_cache_lookups_total\{cdn="nginx-q",result="stale"\} 1/,
      );
    } finally {
      await staleNode.close();
    }
  });
});

describe('when the configuration asks for tokenized manifests without the manifests section', () => {
  it('then the node does not start and the message names the CDN', async () => {
    await assert.rejects(
      startTestNode({ overrides: { cdns: config('http://127.0.0.1:1').cdns } }),
      /manifests: required because nginx-q uses tokenized-manifest delivery/,
    );
  });
});
