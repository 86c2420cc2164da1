// The embedded demo's play page as a newcomer meets it: `npm start`'s entry point in its own process,
// the page address it prints, headless Chromium pressing Play, a stock player fetching everything
// from the local edge, which verifies the token on every request (doubles/cdn-edge, Akamai EdgeAuth)
// in front of the media shipped in api/demo/play/media. No nginx or ffmpeg is involved.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { waitFor } from '../../testkit/processes.ts';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'api', 'main.ts');
const PLAY_TIMEOUT_MS = 60_000;

interface EdgeLog {
  edge: string;
  requests: { seq: number; method: string; url: string; status: number; reason?: string }[];
}

let child: ChildProcess;
let output = '';
let pageUrl: string;
let browser: Browser;

before(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    // Port 0 and a throwaway key directory: nothing shared, nothing written into the repository.
    env: { ...process.env, ST_API_PORT: '0', ST_API_CONFIG: '', ST_API_DEMO_DIR: mkdtempSync(join(tmpdir(), 'st-demo-keys-')) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const printed = await waitFor(() => /^Watch it play: open (http:\S+\/demo\/)$/m.exec(output) ?? undefined, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: 'the "Watch it play" line of npm start',
  });
  pageUrl = printed[1] ?? '';
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS], timeout: 30_000 });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

async function edgeLog(after = -1): Promise<EdgeLog> {
  return (await (await fetch(new URL(`/demo/edge-log?after=${after}`, pageUrl))).json()) as EdgeLog;
}

async function lastSeq(): Promise<number> {
  return (await edgeLog()).requests.at(-1)?.seq ?? -1;
}

/** A fresh page (own cookie jar, no HTTP cache) with the demo page loaded. */
async function openDemoPage(): Promise<{ page: Page; cookieHeaders: Promise<string>[]; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // Every request must reach the edge; a cached segment would be one the edge never checked.
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const cookieHeaders: Promise<string>[] = [];
  const pageOrigin = new URL(pageUrl).origin;
  page.on('request', (request) => {
    if (new URL(request.url()).origin !== pageOrigin) cookieHeaders.push(request.headerValue('cookie').then((value) => value ?? ''));
  });
  await page.goto(pageUrl, { waitUntil: 'load', timeout: 30_000 });
  return { page, cookieHeaders, close: () => context.close() };
}

async function press(page: Page, viewer: string, protocol: 'hls' | 'dash'): Promise<void> {
  await page.selectOption('#viewer', viewer);
  await page.selectOption('#protocol', protocol);
  await page.click('#play');
}

// In-page expressions are strings: this file is type-checked without the DOM library.
const PAGE_STATE = `({
  state: document.body.dataset.state,
  status: document.getElementById('status').textContent,
  currentTime: document.getElementById('video').currentTime,
})`;

/** Waits until the video has advanced past `seconds`, or the page reports a refusal or an error. */
async function playedOrFailed(page: Page, seconds: number): Promise<{ state: string; status: string; currentTime: number }> {
  await page.waitForFunction(
    `(({ state, currentTime }) => currentTime > ${seconds} || state === 'error' || state === 'refused')(${PAGE_STATE})`,
    null,
    {
      timeout: PLAY_TIMEOUT_MS,
      polling: 200,
    },
  );
  return page.evaluate<{ state: string; status: string; currentTime: number }>(PAGE_STATE);
}

describe('when a newcomer opens the page npm start prints and presses Play', () => {
  for (const protocol of ['hls', 'dash'] as const) {
    it(`then a stock ${protocol === 'hls' ? 'hls.js' : 'dash.js'} plays the URL st-api issued, and every request it made carried a token the edge verified`, async () => {
      const since = await lastSeq();
      const { page, cookieHeaders, close } = await openDemoPage();
      try {
        await press(page, 'demo-user', protocol);
        const played = await playedOrFailed(page, 1);
        const answer = JSON.parse((await page.textContent('#answer'))?.replace(/^\d+\n/, '') ?? '{}') as Record<string, unknown>;
        assert.ok(played.currentTime > 1, `the video did not advance: ${JSON.stringify(played)}\n${output}`);
        assert.notEqual(played.state, 'error', played.status);
        assert.deepEqual(
          { cdn: answer['cdn'], delivery: answer['delivery'], protocol: answer['protocol'], quality: answer['quality'] },
          { cdn: 'local-edge', delivery: 'cookie', protocol, quality: '1080p' },
        );

        const { edge, requests } = await edgeLog(since);
        assert.equal(new URL(String(answer['url'])).origin, edge, 'st-api signed for the local edge');
        const manifest = protocol === 'hls' ? 'master.m3u8' : 'manifest.mpd';
        const paths = requests.map((request) => request.url);
        assert.ok(paths.includes(`/vod/tt-demo-0001/${protocol}/1080p/${manifest}`), paths.join('\n'));
        assert.ok(
          paths.some((path) => path.endsWith('/init.mp4')),
          paths.join('\n'),
        );
        assert.ok(
          paths.some((path) => /\/seg-\d+\.m4s$/.test(path)),
          paths.join('\n'),
        );
        // The edge refuses a request without a valid token (403, last test), so a 200 is a verified token.
        assert.deepEqual(
          requests.filter((request) => request.status !== 200),
          [],
        );
        // And the browser did send it: every request to the edge carried the __token__ cookie.
        const cookies = await Promise.all(cookieHeaders);
        assert.ok(cookies.length >= requests.length, `${cookies.length} requests seen by the browser, ${requests.length} by the edge`);
        assert.deepEqual(
          cookies.filter((cookie) => !/(^|; )__token__=st=\d+~exp=\d+~acl=\/vod\/tt-demo-0001\//.test(cookie)),
          [],
        );
      } finally {
        await close();
      }
    });
  }

  it('then the page shows that the edge refuses the same segment without the token (403)', async () => {
    const { page, close } = await openDemoPage();
    try {
      await press(page, 'sd-buyer', 'hls');
      const played = await playedOrFailed(page, 0);
      assert.notEqual(played.state, 'error', played.status);
      assert.match((await page.textContent('#answer')) ?? '', /"quality": "480p"/);
      await page.waitForSelector('#probe:enabled', { timeout: PLAY_TIMEOUT_MS });
      await page.click('#probe');
      await page.waitForSelector('#edge-log:has-text("without the cookie")', { timeout: 10_000 });
      assert.match((await page.textContent('#edge-log')) ?? '', /without the cookie: 403 denied: no __token__ cookie/);
    } finally {
      await close();
    }
  });

  it('then a viewer who bought nothing is refused by st-api (403 NOT_PURCHASED) and the player never reaches the edge', async () => {
    const since = await lastSeq();
    const { page, close } = await openDemoPage();
    try {
      await press(page, 'nobody', 'hls');
      const played = await playedOrFailed(page, 0);
      assert.equal(played.state, 'refused', played.status);
      assert.match((await page.textContent('#answer')) ?? '', /^403\n[\s\S]*"code": "NOT_PURCHASED"/);
      assert.deepEqual((await edgeLog(since)).requests, []);
    } finally {
      await close();
    }
  });
});

describe('when something asks the edge with no token, a forged one, or one for another ceiling', () => {
  it('then the edge answers 403 with its reason, and a rung above the ceiling of the token is refused too', async () => {
    const token = ((await (await fetch(new URL('/demo/token?viewer=sd-buyer', pageUrl))).json()) as { token: string }).token;
    const response = await fetch(new URL('/v1/playback-urls', pageUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web', protocol: 'hls' }),
    });
    assert.equal(response.status, 200);
    const playback = (await response.json()) as { url: string; cookies: { name: string; value: string }[] };
    const cookie = playback.cookies.find((c) => c.name === '__token__')?.value ?? '';
    const edge = new URL(playback.url).origin;
    const segment = `${edge}/vod/tt-demo-0001/hls/480p/360p/seg-1.m4s`;
    const ask = async (url: string, value?: string) => {
      const answer = await fetch(url, value === undefined ? {} : { headers: { cookie: `__token__=${value}` } });
      return `${answer.status} ${answer.headers.get('x-cdn-edge-reason') ?? ''}`.trim();
    };
    const forged = cookie.replace(/hmac=([0-9a-f])/, (_, digit: string) => `hmac=${digit === '0' ? '1' : '0'}`);
    assert.notEqual(forged, cookie);

    assert.equal(await ask(segment, cookie), '200');
    assert.equal(await ask(segment), '403 denied: no __token__ cookie');
    assert.match(await ask(segment, forged), /^403 denied: hmac does not match/);
    assert.match(await ask(`${edge}/vod/tt-demo-0001/hls/1080p/360p/seg-1.m4s`, cookie), /^403 denied: path .* is not matched by acl/);
    // A rung above the ceiling is refused behind a valid token: the SD token never reaches HD files.
    assert.equal(await ask(`${edge}/vod/tt-demo-0001/hls/480p/720p/seg-1.m4s`, cookie), '403');
  });
});
