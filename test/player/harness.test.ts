// The player end-to-end tests are only as good as their harness: prove that
// ffmpeg's media really plays in stock hls.js and dash.js through a real nginx,
// that every request is reported, and that a broken stream ends in a readable
// error rather than a hang. The edge here is a plain static one; the real edge
// configs (deploy/edge/) are tested elsewhere with this same harness.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startNginx, type NginxServer } from '../../testkit/nginx.ts';
import { makeTempDir } from '../../testkit/processes.ts';
import { describePlay, launchBrowser, notAnswered200, type PlayerBrowser, type Player, type PlayResult, type Protocol } from './browser.ts';
import { generateMedia, type GeneratedMedia } from './media.ts';

const TITLE = 'T';
// A missing-file title of its own, so deleting a segment cannot break the plays above.
const BROKEN = 'broken';
const COOKIE_VALUE = 'let-me-in';

// Maps the public URL (children relative to the manifest) onto the origin storage layout, as the real edge does.
function plainEdge(root: string, port: number): string {
  return `
  types {
    application/vnd.apple.mpegurl m3u8;
    application/dash+xml mpd;
    video/mp4 mp4 m4s;
  }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    add_header Access-Control-Allow-Origin * always;
    location /vod/ {
      rewrite ^/vod/([^/]+)/(hls|dash)/([0-9]+p)/([0-9]+p)/([^/]+)$ /$1/$4/$5 break;
      rewrite ^/vod/([^/]+)/(hls|dash)/([0-9]+p)/(master\\.m3u8|manifest\\.mpd)$ /$1/$2/$3/$4 break;
      return 404;
    }
    # Cookie delivery: the same media, only for requests carrying the cookie, with credentialed CORS.
    location /private/vod/ {
      add_header Access-Control-Allow-Origin $http_origin always;
      add_header Access-Control-Allow-Credentials true always;
      if ($cookie_st_token != "${COOKIE_VALUE}") { return 403; }
      rewrite ^/private/vod/([^/]+)/(hls|dash)/([0-9]+p)/([0-9]+p)/([^/]+)$ /$1/$4/$5 break;
      rewrite ^/private/vod/([^/]+)/(hls|dash)/([0-9]+p)/(master\\.m3u8|manifest\\.mpd)$ /$1/$2/$3/$4 break;
      return 404;
    }
    location = / { return 204; }
  }`;
}

describe('player harness', () => {
  let media: GeneratedMedia;
  let edge: NginxServer;
  let browser: PlayerBrowser;
  let player: Player;
  // cdn.st.test resolves to 127.0.0.1 inside the browser only (--host-resolver-rules).
  let cdn: string;

  /** Plays `url` and checks it played to the end with every edge request a 200. */
  async function playsToTheEnd(url: string, protocol: Protocol): Promise<{ result: PlayResult; summary: string }> {
    const result = await player.play({ url, protocol });
    const summary = describePlay(result);
    assert.equal(result.error, undefined, summary);
    assert.equal(result.ended, true, summary);
    assert.deepEqual(notAnswered200(result), [], summary);
    return { result, summary };
  }

  before(async () => {
    const root = await makeTempDir('st-media');
    media = await generateMedia(root, [
      { id: TITLE, rungs: [1080, 480] },
      { id: BROKEN, rungs: [480] },
    ]);
    await rm(join(root, BROKEN, '480p', 'seg-2.m4s'));
    edge = await startNginx(({ port }) => plainEdge(root, port));
    cdn = `http://cdn.st.test:${edge.port}`;
    browser = await launchBrowser();
    player = await browser.newPlayer();
  });

  after(async () => {
    await browser?.close();
    await edge?.stop();
  });

  it('when media is generated, then every title has its rungs and one HLS and DASH manifest per ceiling', () => {
    const title = media.titles.find((t) => t.id === TITLE);
    assert.ok(title !== undefined);
    assert.deepEqual(
      title.rungs.map((r) => [r.name, r.width, r.height, r.segments]),
      [
        ['1080p', 1920, 1080, 4],
        ['480p', 854, 480, 4],
      ],
    );
    assert.deepEqual(title.ceilings, ['1080p', '480p']);
    for (const rung of title.rungs) assert.match(rung.codecs, /^avc1\.[0-9a-f]{6}$/);
  });

  it('when hls.js plays the 1080p master, then it plays to the end and every request is a 200', async () => {
    const result = await player.play({ url: `${cdn}/vod/${TITLE}/hls/1080p/master.m3u8`, protocol: 'hls' });
    const summary = describePlay(result);
    assert.equal(result.error, undefined, summary);
    assert.equal(result.ended, true, summary);
    assert.ok(result.duration > 3.5 && result.duration < 4.5, summary);
    assert.ok(result.requests.length > 0, summary);
    assert.deepEqual(notAnswered200(result), [], summary);
    const paths = result.requests.map((r) => new URL(r.url).pathname);
    assert.equal(paths[0], `/vod/${TITLE}/hls/1080p/master.m3u8`, summary);
    // hls.js loads the playlist of each level it picks: it starts low on its default estimate and climbs on loopback speed.
    for (const rung of ['1080p', '480p']) {
      assert.ok(paths.includes(`/vod/${TITLE}/hls/1080p/${rung}/index.m3u8`), `no ${rung} playlist request\n${summary}`);
    }
    assert.ok(
      paths.some((p) => /\/seg-4\.m4s$/.test(p)),
      summary,
    );
    // And nginx saw the same: the browser cache is off, so nothing was answered from it.
    const served = edge.accessLog().filter((entry) => entry.uri.startsWith(`/vod/${TITLE}/hls/1080p/`));
    assert.ok(served.length >= result.requests.length, `${served.length} requests in the access log\n${summary}`);
  });

  it('when dash.js plays the 480p MPD, then it plays to the end fetching only 480p segments, all 200', async () => {
    const { result, summary } = await playsToTheEnd(`${cdn}/vod/${TITLE}/dash/480p/manifest.mpd`, 'dash');
    const paths = result.requests.map((r) => new URL(r.url).pathname);
    assert.equal(paths[0], `/vod/${TITLE}/dash/480p/manifest.mpd`, summary);
    for (const path of paths.slice(1))
      assert.match(path, new RegExp(`^/vod/${TITLE}/dash/480p/480p/(init\\.mp4|seg-[1-4]\\.m4s)$`), summary);
    assert.ok(paths.includes(`/vod/${TITLE}/dash/480p/480p/seg-4.m4s`), summary);
    assert.deepEqual(result.renditions, [480], summary);
  });

  it('when dash.js plays the 1080p MPD, then it plays to the end', async () => {
    await playsToTheEnd(`${cdn}/vod/${TITLE}/dash/1080p/manifest.mpd`, 'dash');
  });

  it('when hls.js is told to stop at maxSeconds, then it resolves there without ending', async () => {
    const result = await player.play({ url: `${cdn}/vod/${TITLE}/hls/480p/master.m3u8`, protocol: 'hls', maxSeconds: 1 });
    const summary = describePlay(result);
    assert.equal(result.error, undefined, summary);
    assert.equal(result.ended, false, summary);
    assert.ok(result.currentTime >= 1, summary);
    // The 480p ceiling lists only 480p.
    assert.ok(
      result.requests.every((r) => !r.url.includes('1080p')),
      summary,
    );
  });

  it('when the HLS master is missing, then hls.js ends with a readable fatal error, not a hang', async () => {
    const result = await player.play({ url: `${cdn}/vod/${TITLE}/hls/720p/master.m3u8`, protocol: 'hls' });
    const summary = describePlay(result);
    assert.equal(result.timedOut, false, summary);
    assert.match(result.error ?? '', /hls\.js networkError\/manifestLoadError HTTP 404/, summary);
    assert.deepEqual(
      result.requests.map((r) => r.status),
      [404],
      summary,
    );
  });

  it('when a segment is missing, then hls.js play resolves with an error within its timeout, not a hang', async () => {
    // Stock hls.js retries a 404 fragment with back-off for ~30 s before it gives up, so the
    // harness's own bound is what ends this play; either way the caller gets an error, in time.
    const result = await player.play({ url: `${cdn}/vod/${BROKEN}/hls/480p/master.m3u8`, protocol: 'hls', timeoutMs: 8_000 });
    const summary = describePlay(result);
    assert.equal(result.ended, false, summary);
    assert.match(result.error ?? '', /fragLoadError HTTP 404 .*seg-2\.m4s|timed out after/, summary);
    assert.ok(
      result.log.some((line) => /fragLoadError HTTP 404 .*seg-2\.m4s/.test(line)),
      summary,
    );
    assert.ok(
      result.requests.some((r) => r.status === 404 && r.url.endsWith('/seg-2.m4s')),
      summary,
    );
  });

  it('when the DASH manifest is missing, then dash.js ends with a readable error, not a hang', async () => {
    const result = await player.play({ url: `${cdn}/vod/${TITLE}/dash/720p/manifest.mpd`, protocol: 'dash' });
    const summary = describePlay(result);
    assert.equal(result.timedOut, false, summary);
    assert.match(result.error ?? '', /^dash\.js error \d+/, summary);
    assert.ok(
      result.requests.some((r) => r.status === 404 && r.url.endsWith('/manifest.mpd')),
      summary,
    );
  });

  it('when a segment is missing, then dash.js ends with an error or stalls into the timeout, never hangs the harness', async () => {
    const result = await player.play({ url: `${cdn}/vod/${BROKEN}/dash/480p/manifest.mpd`, protocol: 'dash', timeoutMs: 15_000 });
    const summary = describePlay(result);
    assert.equal(result.ended, false, summary);
    assert.notEqual(result.error, undefined, summary);
    assert.ok(
      result.requests.some((r) => r.status === 404 && r.url.endsWith('/seg-2.m4s')),
      summary,
    );
  });

  for (const protocol of ['hls', 'dash'] as const) {
    const manifest = protocol === 'hls' ? 'hls/1080p/master.m3u8' : 'dash/1080p/manifest.mpd';

    it(`when a Domain=st.test cookie is set and ${protocol} plays withCredentials, then every request carries it and plays`, async () => {
      const cookiePlayer = await browser.newPlayer();
      try {
        await cookiePlayer.setCookies([{ name: 'st_token', value: COOKIE_VALUE, domain: '.st.test', path: '/', httpOnly: true }]);
        const result = await cookiePlayer.play({ url: `${cdn}/private/vod/${TITLE}/${manifest}`, protocol, withCredentials: true });
        const summary = describePlay(result);
        assert.equal(result.error, undefined, summary);
        assert.equal(result.ended, true, summary);
        assert.deepEqual(notAnswered200(result), [], summary);
        const served = edge.accessLog().filter((entry) => entry.uri.startsWith(`/private/vod/${TITLE}/${protocol}/`));
        assert.ok(served.length >= result.requests.length, summary);
        for (const entry of served) assert.equal(entry.cookie, `st_token=${COOKIE_VALUE}`, `${entry.uri}\n${summary}`);
      } finally {
        await cookiePlayer.close();
      }
    });

    it(`when ${protocol} plays without credentials, then the cookie stays home and the edge refuses the manifest`, async () => {
      const cookiePlayer = await browser.newPlayer();
      try {
        await cookiePlayer.setCookies([{ name: 'st_token', value: COOKIE_VALUE, domain: '.st.test', path: '/' }]);
        const result = await cookiePlayer.play({ url: `${cdn}/private/vod/${TITLE}/${manifest}`, protocol, timeoutMs: 15_000 });
        const summary = describePlay(result);
        assert.equal(result.ended, false, summary);
        assert.notEqual(result.error, undefined, summary);
        assert.equal(result.requests[0]?.status, 403, summary);
      } finally {
        await cookiePlayer.close();
      }
    });
  }

  it('when the media host refuses connections, then the failed request is reported with status 0', async () => {
    const result = await player.play({ url: `http://cdn.st.test:1/vod/${TITLE}/hls/480p/master.m3u8`, protocol: 'hls' });
    const summary = describePlay(result);
    assert.equal(result.timedOut, false, summary);
    assert.notEqual(result.error, undefined, summary);
    assert.ok(result.requests.length >= 1 && result.requests.every((r) => r.status === 0 && r.failure !== undefined), summary);
  });
});
