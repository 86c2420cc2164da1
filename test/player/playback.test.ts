// What the product is for: a stock player plays the URL st-api returns, from the first request to
// the last segment, through an edge that checks the token on every request.
//
// - nginx: stock nginx running the configuration shipped in deploy/edge/nginx/ (path token).
// - CloudFront and Akamai: the verifying edge double (doubles/cdn-edge/, written from the vendors'
//   documents and checked against their own libraries) in front of the shipped unsigned origin
//   configuration, with signed cookies a web page gets from st-api by Set-Cookie.
// The media is real (ffmpeg, two rungs, HLS and DASH over the same fMP4 segments) and so are the
// players (hls.js and dash.js in Debian's Chromium). A web app's flow is followed: the page asks
// st-api for the URL with fetch (CORS, credentials), then hands the URL to the player.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCdnEdge, type CdnEdge } from '../../doubles/cdn-edge/server.ts';
import { startNginx, type NginxServer } from '../../testkit/nginx.ts';
import { freePort, makeTempDir } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { describePlay, launchBrowser, notAnswered200, type Player, type PlayerBrowser, type PlayResult, type Protocol } from './browser.ts';
import { generateMedia } from './media.ts';

const EDGE_CONFIG_DIR = join(import.meta.dirname, '..', '..', 'deploy', 'edge', 'nginx');
// Two demo titles the demo viewers hold rights to: demo-user owns A in UHD and rents B in HD;
// sd-buyer owns A in SD. The web device caps at 1080p, so the ceilings in play are 1080p and 480p.
const TITLE_A = 'tt-demo-0001';
const TITLE_B = 'tt-demo-0002';
const SEVEN_HOURS_MS = 7 * 3600_000;

const NGINX_SECRET = randomBytes(24).toString('base64url');
const MANIFEST_KEY = randomBytes(32).toString('base64url');
const AKAMAI_KEY = randomBytes(32).toString('hex');
const CLOUDFRONT_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface Playback {
  url: string;
  protocol: Protocol;
  quality: string;
  delivery: string;
  cookies?: { name: string; value: string; domain: string; path: string }[];
}

/** The nginx config the tests run: the shipped files, included exactly as an operator does. */
function edgeServer(body: string): (ctx: { port: number; dir: string }) => string {
  return ({ port, dir }) => {
    // Relative includes resolve against nginx's conf dir; /etc/nginx/st-api in production.
    symlinkSync(EDGE_CONFIG_DIR, join(dir, 'st-api'));
    return `
      include st-api/st-vod-http.conf;
      server {
        listen 127.0.0.1:${port};
        ${body}
      }`;
  };
}

let mediaRoot: string;
let pathTokenEdge: NginxServer;
let origin: NginxServer;
let queryTokenEdge: NginxServer;
let cloudfrontEdge: CdnEdge;
let akamaiEdge: CdnEdge;
let cloudfrontQueryEdge: CdnEdge;
let akamaiQueryEdge: CdnEdge;
let browser: PlayerBrowser;
const nodes: TestNode[] = [];

before(async () => {
  mediaRoot = await makeTempDir('st-media');
  await generateMedia(mediaRoot, [
    { id: TITLE_A, rungs: [1080, 480] },
    { id: TITLE_B, rungs: [1080, 480] },
  ]);
  pathTokenEdge = await startNginx(
    edgeServer(`set $st_vod_root ${mediaRoot}; set $st_vod_secret "${NGINX_SECRET}"; include st-api/st-vod-path-token.conf;`),
  );
  origin = await startNginx(edgeServer(`set $st_vod_root ${mediaRoot}; include st-api/st-vod-origin.conf;`));
  // The CloudFront and Akamai edges in front of the origin, each taking the token only where `carrier` says.
  const cloudfront = (carrier: 'cookie' | 'query') =>
    startCdnEdge({ scheme: 'cloudfront', keys: { KPLAYTEST1: CLOUDFRONT_KEY.publicKey }, upstream: origin.baseUrl, carrier });
  const akamai = (carrier: 'cookie' | 'query') => startCdnEdge({ scheme: 'akamai', keys: [AKAMAI_KEY], upstream: origin.baseUrl, carrier });
  cloudfrontEdge = await cloudfront('cookie');
  akamaiEdge = await akamai('cookie');
  queryTokenEdge = await startNginx(
    edgeServer(`set $st_vod_root ${mediaRoot}; set $st_vod_secret "${NGINX_SECRET}"; include st-api/st-vod-query-token.conf;`),
  );
  cloudfrontQueryEdge = await cloudfront('query');
  akamaiQueryEdge = await akamai('query');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await Promise.allSettled([
    ...nodes.map((node) => node.close()),
    ...[pathTokenEdge, queryTokenEdge, origin].map((server) => server?.stop()),
    ...[cloudfrontEdge, akamaiEdge, cloudfrontQueryEdge, akamaiQueryEdge].map((edge) => edge?.stop()),
  ]);
});

type Cdn = 'nginx' | 'cloudfront' | 'akamai';
type Mode = 'default' | 'tokenized-manifest';

/** An st-api node whose only CDN is `cdn`; browsers reach it and the edges by name (*.st.test). */
async function nodeFor(cdn: Cdn, pageOrigin: string, now?: () => number, mode: Mode = 'default'): Promise<TestNode> {
  // The manifest URLs st-api returns must name the address the browser reaches it on.
  const port = await freePort();
  const tokenized = {
    nginx: { origin: `http://nginx-q.st.test:${queryTokenEdge.port}` },
    cloudfront: { origin: `http://cf-q.st.test:${cloudfrontQueryEdge.port}` },
    akamai: { origin: `http://ak-q.st.test:${akamaiQueryEdge.port}` },
  };
  const signers = {
    nginx: {
      origin: `http://nginx.st.test:${pathTokenEdge.port}`,
      signer: { type: 'nginx', keys: [{ id: 'n1', active: true, secret: NGINX_SECRET }] },
    },
    cloudfront: {
      origin: `http://cf.st.test:${cloudfrontEdge.port}`,
      delivery: { cookieDomain: 'st.test' },
      signer: {
        type: 'cloudfront',
        keys: [
          { id: 'KPLAYTEST1', active: true, privateKey: CLOUDFRONT_KEY.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
        ],
      },
    },
    akamai: {
      origin: `http://ak.st.test:${akamaiEdge.port}`,
      delivery: { cookieDomain: 'st.test' },
      signer: { type: 'akamai', keys: [{ id: 'a1', active: true, secret: AKAMAI_KEY }] },
    },
  };
  const cdnConfig =
    mode === 'default'
      ? { name: cdn, ...signers[cdn] }
      : { name: cdn, signer: signers[cdn].signer, ...tokenized[cdn], delivery: { mode, manifestOrigin: origin.baseUrl } };
  const node = await startTestNode({
    port,
    overrides: {
      cdns: [cdnConfig],
      cors: { allowedOrigins: [pageOrigin] },
      manifests: { publicUrl: `http://api.st.test:${port}`, keys: [{ id: 'm1', active: true, secret: MANIFEST_KEY }] },
    },
    ...(now === undefined ? {} : { now }),
  });
  nodes.push(node);
  return node;
}

/** The web app's call: fetch from the player page, with credentials so Set-Cookie is kept. */
async function requestPlayback(player: Player, node: TestNode, userId: string, body: Record<string, unknown>): Promise<Playback> {
  await player.page.goto(player.pageUrl);
  const api = `http://api.st.test:${new URL(node.baseUrl).port}/v1/playback-urls`;
  const answer = await player.page.evaluate(
    async ({ api, token, body }) => {
      const response = await fetch(api, {
        method: 'POST',
        credentials: 'include',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, text: await response.text() };
    },
    { api, token: node.tokenFor(userId), body },
  );
  assert.equal(answer.status, 200, answer.text);
  return JSON.parse(answer.text) as Playback;
}

/** A GET the way a browser sends it to `url` (its Host header), over loopback; resolves to the status. */
function statusOf(url: string, cookie?: string): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port,
        path: target.pathname + target.search,
        headers: { host: target.host, ...(cookie === undefined ? {} : { cookie }) },
        signal: AbortSignal.timeout(10_000),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function assertPlayedToTheEnd(result: PlayResult): void {
  assert.equal(result.error, undefined, describePlay(result));
  assert.ok(result.ended, `the player did not reach the end\n${describePlay(result)}`);
  assert.ok(result.requests.length >= 4, describePlay(result));
  assert.deepEqual(notAnswered200(result), [], `every edge request answers 200\n${describePlay(result)}`);
}

function assertRefusedAtOnce(result: PlayResult): void {
  assert.ok(result.error !== undefined, `a refused token must stop the player, never play silently\n${describePlay(result)}`);
  assert.equal(result.requests[0]?.status, 403, describePlay(result));
  assert.equal(result.playedSeconds, 0);
}

const PROTOCOLS: Protocol[] = ['hls', 'dash'];

describe('when st-api signs for an nginx edge (path token, stock secure_link, deploy/edge/nginx)', () => {
  let player: Player;
  let node: TestNode;
  before(async () => {
    player = await browser.newPlayer();
    node = await nodeFor('nginx', new URL(player.pageUrl).origin);
  });

  for (const protocol of PROTOCOLS) {
    it(`then a stock ${protocol === 'hls' ? 'hls.js' : 'dash.js'} plays ${protocol.toUpperCase()} to the end, every playlist and segment request carrying the token in its path`, async () => {
      const playback = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol });
      assert.equal(playback.delivery, 'path-token');
      assert.equal(playback.quality, '1080p');
      const result = await player.play({ url: playback.url, protocol });
      assertPlayedToTheEnd(result);
      const token = /^\/t\/[\w-]{22}\/\d+\//.exec(new URL(playback.url).pathname)?.[0] ?? 'no token';
      for (const request of result.requests)
        assert.ok(new URL(request.url).pathname.startsWith(token), `request without the token: ${request.url}`);
      // The edge saw what the player asked for: both rungs of the 1080p ceiling, all with the token.
      const served = pathTokenEdge.accessLog().filter((entry) => entry.uri.startsWith(token));
      assert.ok(
        served.some((entry) => entry.uri.includes('/1080p/1080p/')) || served.some((entry) => entry.uri.includes('/1080p/480p/')),
        JSON.stringify(served),
      );
    });
  }

  it('then an SD buyer plays only the SD rung, and their token gets 403 on an HD segment, guessed either way', async () => {
    const playback = await requestPlayback(player, node, 'sd-buyer', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
    assert.equal(playback.quality, '480p');
    const result = await player.play({ url: playback.url, protocol: 'hls' });
    assertPlayedToTheEnd(result);
    assert.deepEqual(result.renditions, [480]);
    const ceiling = playback.url.replace(/master\.m3u8$/, '');
    // Through the SD ceiling's directory: the token is valid, the rung is above the ceiling.
    assert.equal(await statusOf(`${ceiling}1080p/seg-1.m4s`), 403);
    // Through the HD ceiling's directory: the token does not cover it.
    assert.equal(await statusOf(`${ceiling.replace('/480p/', '/1080p/')}1080p/seg-1.m4s`), 403);
    // The SD rung itself is served with the same token, so the refusals above are about the rung.
    assert.equal(await statusOf(`${ceiling}480p/seg-1.m4s`), 200);
  });

  it("then a tampered token, an expired token and title A's token on title B each stop the player with 403 on its first request", async () => {
    const good = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
    const hash = /\/t\/([\w-]{22})\//.exec(good.url)?.[1] ?? '';
    const tampered = good.url.replace(hash, `${hash.startsWith('A') ? 'B' : 'A'}${hash.slice(1)}`);
    assertRefusedAtOnce(await player.play({ url: tampered, protocol: 'hls' }));

    const onTitleB = good.url.replace(`/vod/${TITLE_A}/`, `/vod/${TITLE_B}/`);
    assertRefusedAtOnce(await player.play({ url: onTitleB, protocol: 'hls' }));

    // A node seven hours in the past issues URLs that expired an hour ago (they live six).
    const pastNode = await nodeFor('nginx', new URL(player.pageUrl).origin, () => Date.now() - SEVEN_HOURS_MS);
    const expired = await requestPlayback(player, pastNode, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'dash' });
    assert.ok(Date.parse((expired as Playback & { expiresAt: string }).expiresAt) < Date.now());
    assertRefusedAtOnce(await player.play({ url: expired.url, protocol: 'dash' }));
  });
});

for (const cdn of ['cloudfront', 'akamai'] as const) {
  describe(`when st-api signs for ${cdn === 'cloudfront' ? 'CloudFront' : 'Akamai'} (signed cookies set by st-api, verified by the edge double)`, () => {
    let player: Player;
    let node: TestNode;
    let edge: CdnEdge;
    before(async () => {
      player = await browser.newPlayer();
      node = await nodeFor(cdn, new URL(player.pageUrl).origin);
      edge = cdn === 'cloudfront' ? cloudfrontEdge : akamaiEdge;
    });

    for (const protocol of PROTOCOLS) {
      it(`then ${protocol === 'hls' ? 'hls.js' : 'dash.js'} with credentials plays ${protocol.toUpperCase()} to the end, every request carrying the cookies`, async () => {
        await player.clearCookies();
        const playback = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol });
        assert.equal(playback.delivery, 'cookie');
        assert.ok(!playback.url.includes('?'), 'the URL carries no token in cookie mode');
        // The browser stored what st-api set: the same cookies the JSON gives native apps.
        const stored = await player.cookies(playback.url);
        assert.deepEqual(stored.map((cookie) => cookie.name).sort(), (playback.cookies ?? []).map((cookie) => cookie.name).sort());
        const before = edge.requests.length;
        const result = await player.play({ url: playback.url, protocol, withCredentials: true });
        assertPlayedToTheEnd(result);
        const seen = edge.requests.slice(before).filter((request) => request.method === 'GET');
        assert.ok(seen.length >= 4);
        assert.deepEqual(
          seen.filter((request) => request.status !== 200),
          [],
          'the edge verified every request',
        );
      });
    }

    it("then an SD buyer's cookies get 403 on an HD segment, guessed either way, and 200 on the SD rung", async () => {
      await player.clearCookies();
      const playback = await requestPlayback(player, node, 'sd-buyer', { contentId: TITLE_A, device: 'web', protocol: 'dash' });
      assert.equal(playback.quality, '480p');
      const cookie = (playback.cookies ?? []).map((c) => `${c.name}=${c.value}`).join('; ');
      const ceiling = playback.url.replace(/manifest\.mpd$/, '');
      assert.equal(await statusOf(`${ceiling}1080p/seg-1.m4s`, cookie), 403, 'the origin refuses a rung above the ceiling');
      assert.equal(
        await statusOf(`${ceiling.replace('/480p/', '/1080p/')}1080p/seg-1.m4s`, cookie),
        403,
        'the token does not cover the HD ceiling',
      );
      assert.equal(await statusOf(`${ceiling}480p/seg-1.m4s`, cookie), 200);
    });

    it("then tampered cookies, expired cookies and title A's cookies on title B each stop the player with 403 on its first request", async () => {
      await player.clearCookies();
      const good = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
      const signatureName = cdn === 'cloudfront' ? 'CloudFront-Signature' : '__token__';
      const url = new URL(good.url);
      const install = (cookies: Playback['cookies'], path: string) =>
        player.setCookies((cookies ?? []).map((cookie) => ({ name: cookie.name, value: cookie.value, domain: url.hostname, path })));

      await player.clearCookies();
      await install(
        (good.cookies ?? []).map((cookie) =>
          cookie.name === signatureName ? { ...cookie, value: cookie.value.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) } : cookie,
        ),
        '/',
      );
      assertRefusedAtOnce(await player.play({ url: good.url, protocol: 'hls', withCredentials: true }));

      await player.clearCookies();
      await install(good.cookies, '/');
      assertRefusedAtOnce(
        await player.play({ url: good.url.replace(`/vod/${TITLE_A}/`, `/vod/${TITLE_B}/`), protocol: 'hls', withCredentials: true }),
      );

      await player.clearCookies();
      const pastNode = await nodeFor(cdn, new URL(player.pageUrl).origin, () => Date.now() - SEVEN_HOURS_MS);
      const expired = await requestPlayback(player, pastNode, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'dash' });
      assertRefusedAtOnce(await player.play({ url: expired.url, protocol: 'dash', withCredentials: true }));
    });

    it('then a native app that installs the JSON cookies itself (no Set-Cookie) plays too', async () => {
      await player.clearCookies();
      const playback = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
      await player.clearCookies();
      await player.setCookies(
        (playback.cookies ?? []).map((cookie) => ({
          name: cookie.name,
          value: cookie.value,
          domain: new URL(playback.url).hostname,
          path: cookie.path,
        })),
      );
      assertPlayedToTheEnd(await player.play({ url: playback.url, protocol: 'hls', withCredentials: true }));
    });
  });
}

const QUERY_TOKEN: Record<Cdn, RegExp> = {
  nginx: /[?&]md5=[\w-]{22}&expires=\d+$/,
  cloudfront: /[?&]Policy=[\w~-]+&Key-Pair-Id=KPLAYTEST1&Signature=[\w~-]+&Hash-Algorithm=SHA256$/,
  akamai: /[?&]__token__=st=\d+~exp=\d+~acl=[^&]+~hmac=[0-9a-f]{64}$/,
};

for (const cdn of ['nginx', 'cloudfront', 'akamai'] as const) {
  describe(`when st-api serves tokenized manifests for ${cdn} (its query token on every segment)`, () => {
    let player: Player;
    let node: TestNode;
    before(async () => {
      player = await browser.newPlayer();
      node = await nodeFor(cdn, new URL(player.pageUrl).origin, undefined, 'tokenized-manifest');
    });

    for (const protocol of PROTOCOLS) {
      it(`then a stock ${protocol === 'hls' ? 'hls.js' : 'dash.js'} plays ${protocol.toUpperCase()} to the end: playlists from st-api, every segment from the edge with the token`, async () => {
        const playback = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol });
        assert.equal(playback.delivery, 'tokenized-manifest');
        const api = new URL(playback.url).host;
        const result = await player.play({ url: playback.url, protocol });
        assertPlayedToTheEnd(result);
        const fromEdge = result.requests.filter((request) => new URL(request.url).host !== api);
        assert.ok(fromEdge.length >= 3, describePlay(result));
        for (const request of fromEdge) assert.match(request.url, QUERY_TOKEN[cdn]);
        assert.ok(
          result.requests.some(
            (request) => new URL(request.url).host === api && request.url.endsWith(protocol === 'hls' ? '.m3u8' : '.mpd'),
          ),
        );
      });
    }

    it("then an SD buyer's segment token gets 403 on an HD segment through the SD ceiling, and a tampered manifest URL stops the player at once", async () => {
      const playback = await requestPlayback(player, node, 'sd-buyer', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
      const media = await (await fetch(new URL('480p/index.m3u8', playback.url.replace('api.st.test', '127.0.0.1')))).text();
      const segment = media.split('\n').find((line) => line.includes('/480p/seg-1.m4s')) ?? '';
      assert.match(segment, QUERY_TOKEN[cdn]);
      assert.equal(await statusOf(segment), 200);
      assert.equal(await statusOf(segment.replace('/480p/480p/', '/480p/1080p/')), 403);
      assert.equal(await statusOf(segment.replace('/480p/480p/', '/1080p/1080p/')), 403);

      const hmac = playback.url.split('/')[8] ?? '';
      const tampered = playback.url.replace(hmac, `${hmac.startsWith('A') ? 'B' : 'A'}${hmac.slice(1)}`);
      assertRefusedAtOnce(await player.play({ url: tampered, protocol: 'hls' }));
    });

    it("then title A's manifest URL on title B and an expired manifest URL each stop the player with 403 on its first request", async () => {
      const good = await requestPlayback(player, node, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'dash' });
      assertRefusedAtOnce(await player.play({ url: good.url.replace(`/vod/${TITLE_A}/`, `/vod/${TITLE_B}/`), protocol: 'dash' }));
      const pastNode = await nodeFor(cdn, new URL(player.pageUrl).origin, () => Date.now() - SEVEN_HOURS_MS, 'tokenized-manifest');
      const expired = await requestPlayback(player, pastNode, 'demo-user', { contentId: TITLE_A, device: 'web', protocol: 'hls' });
      // Presented now to a node of the same fleet (the past node's own clock would still accept it).
      const now = new URL(expired.url);
      now.port = new URL(node.baseUrl).port;
      assertRefusedAtOnce(await player.play({ url: now.href, protocol: 'hls' }));
    });
  });
}
