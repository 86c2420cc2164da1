// Headless Debian Chromium driven by playwright-core, playing URLs in stock
// hls.js and dash.js (test/player/page/player.html) and reporting what the
// player did and every request it made to the media hosts.
//
// Chromium is not in the pid registry: playwright talks to it over a pipe, and
// Chromium exits as soon as that pipe closes, i.e. when this process dies,
// however it dies.
import { chromium, type Browser, type BrowserContext, type Cookie, type Page, type Request } from 'playwright-core';
import { startPageServer, type PageServer } from './page-server.ts';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  // Root in a container: the setuid/namespace sandbox cannot start.
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Muted autoplay is allowed anyway; this also covers play() after a late attach.
  '--autoplay-policy=no-user-gesture-required',
  // cdn.st.test:<port>, api.st.test:<port>, player.st.test:<port> all reach the
  // loopback servers while keeping real host names, so Domain=st.test cookies
  // and same-site rules behave as in production. The port is kept.
  '--host-resolver-rules=MAP *.st.test 127.0.0.1',
];

export type Protocol = 'hls' | 'dash';

export interface PlayOptions {
  /** The manifest URL (HLS master playlist or DASH MPD), e.g. a signed URL from st-api. */
  readonly url: string;
  readonly protocol: Protocol;
  /** Send cookies cross-origin (XHR/fetch withCredentials); the only change to the stock players. */
  readonly withCredentials?: boolean;
  /** Resolve once currentTime reaches this, without waiting for the end. */
  readonly maxSeconds?: number;
  /** Whole play, page load included. Default 30 s; on expiry the result has timedOut and an error. */
  readonly timeoutMs?: number;
  /** Default 2: halves the wall time of a play; both players keep up on a busy 2-core machine. */
  readonly playbackRate?: number;
}

export interface PlayedRequest {
  readonly url: string;
  /** HTTP status; 0 when the request failed without a response (refused, CORS-blocked, aborted). */
  readonly status: number;
  readonly method: string;
  /** Chromium's reason when status is 0, e.g. "net::ERR_FAILED". */
  readonly failure?: string;
}

export interface PlayResult {
  /** The media element's `ended`: the player reached the end of the presentation. */
  readonly ended: boolean;
  /** Seconds of media actually played (sum of video.played ranges). */
  readonly playedSeconds: number;
  readonly currentTime: number;
  /** The media element's duration; 0 if it never learnt one. */
  readonly duration: number;
  /** The player's fatal error, readable (player, error code, URL, HTTP status); absent when it played. */
  readonly error?: string;
  /** True when timeoutMs ran out; `error` then says where playback stood. */
  readonly timedOut: boolean;
  /** Distinct video heights the element displayed, ascending (the rungs actually played). */
  readonly renditions: readonly number[];
  /** Every request the page made to hosts other than the player page's own, in completion order. */
  readonly requests: readonly PlayedRequest[];
  /** Player/element events with timings, and the page's console errors and warnings: for failure messages. */
  readonly log: readonly string[];
  /** Wall time of the play, page load included. */
  readonly elapsedMs: number;
}

export interface NewPlayerOptions {
  /** For the edge's HTTPS server blocks with self-signed certificates. */
  readonly ignoreHTTPSErrors?: boolean;
  /** The page's host; default player.st.test, same-site with cdn.st.test and api.st.test. */
  readonly pageHost?: string;
}

export interface Player {
  /** Where the player page is loaded from; requests to this origin are not reported. */
  readonly pageUrl: string;
  readonly context: BrowserContext;
  readonly page: Page;
  /** One play on a freshly loaded page; never rejects for player failures, only for a broken harness. */
  play(options: PlayOptions): Promise<PlayResult>;
  /** Adds cookies to this player's jar (playwright's context.addCookies). */
  setCookies(cookies: Parameters<BrowserContext['addCookies']>[0]): Promise<void>;
  cookies(urls?: string | string[]): Promise<Cookie[]>;
  clearCookies(): Promise<void>;
  close(): Promise<void>;
}

export interface PlayerBrowser {
  readonly browser: Browser;
  /** A fresh context (own cookie jar) and page. */
  newPlayer(options?: NewPlayerOptions): Promise<Player>;
  /** Closes every player, the browser and the page server. */
  close(): Promise<void>;
}

interface PageArgs {
  readonly url: string;
  readonly protocol: Protocol;
  readonly withCredentials: boolean;
  readonly maxSeconds: number | undefined;
  readonly timeoutMs: number;
  readonly playbackRate: number;
}

/** What player.html's stPlay() answers: the result without what only the harness measures (requests, console, wall time). */
type PageResult = Omit<PlayResult, 'requests' | 'log' | 'elapsedMs'> & { readonly events: string[] };

const LAUNCH_TIMEOUT_MS = 30_000;
// Beyond the page's own timer: only a wedged renderer gets this far.
const HARNESS_SLACK_MS = 15_000;

/** Launches headless Chromium and the player page server; one per test file is plenty. */
export async function launchBrowser(): Promise<PlayerBrowser> {
  const pageServer = await startPageServer();
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS });
  } catch (error) {
    await pageServer.close();
    throw new Error(`cannot launch ${CHROMIUM} (install chromium from Debian)`, { cause: error });
  }
  const players = new Set<Player>();
  return {
    browser,
    async newPlayer(options = {}) {
      const player = await newPlayer(browser, pageServer, options, () => players.delete(player));
      players.add(player);
      return player;
    },
    async close() {
      for (const player of [...players]) await player.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await pageServer.close();
    },
  };
}

/** One browser with one player; close() closes the browser too. */
export async function openPlayer(options: NewPlayerOptions = {}): Promise<Player> {
  const browser = await launchBrowser();
  try {
    const player = await browser.newPlayer(options);
    return { ...player, close: () => browser.close() };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

async function newPlayer(browser: Browser, pageServer: PageServer, options: NewPlayerOptions, onClose: () => void): Promise<Player> {
  const context = await browser.newContext({ ignoreHTTPSErrors: options.ignoreHTTPSErrors ?? false });
  const page = await context.newPage();
  // Every play must reach the edge: a cached segment would hide an expired or
  // wrong signature, and the access log would miss requests the test asserts on.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });

  const pageUrl = pageServer.pageUrl(options.pageHost);
  const pageOrigin = new URL(pageUrl).origin;
  let collecting: { requests: PlayedRequest[]; log: string[] } | null = null;
  const seen = new WeakSet<Request>();
  const isMedia = (url: string): boolean => /^https?:/.test(url) && new URL(url).origin !== pageOrigin;

  page.on('response', (response) => {
    const request = response.request();
    if (collecting === null || !isMedia(request.url()) || seen.has(request)) return;
    seen.add(request);
    collecting.requests.push({ url: request.url(), status: response.status(), method: request.method() });
  });
  page.on('requestfailed', (request) => {
    // A request aborted after its headers arrived (a player cancelling a load) keeps its status.
    if (collecting === null || !isMedia(request.url()) || seen.has(request)) return;
    seen.add(request);
    collecting.requests.push({
      url: request.url(),
      status: 0,
      method: request.method(),
      failure: request.failure()?.errorText ?? 'failed',
    });
  });
  page.on('console', (message) => {
    if (collecting !== null && (message.type() === 'error' || message.type() === 'warning'))
      collecting.log.push(`console.${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    collecting?.log.push(`page error: ${error.message}`);
  });

  let busy = false;
  let closed = false;
  return {
    pageUrl,
    context,
    page,
    async play(playOptions) {
      if (closed) throw new Error('player.play: the player is closed');
      if (busy) throw new Error('player.play: a play is already running on this player (one page, one play at a time)');
      busy = true;
      const timeoutMs = playOptions.timeoutMs ?? 30_000;
      const started = Date.now();
      const run = { requests: [] as PlayedRequest[], log: [] as string[] };
      collecting = run;
      try {
        // A fresh page per play: no player, buffer or bandwidth estimate carries over.
        await page.goto(pageUrl, { waitUntil: 'load', timeout: timeoutMs });
        const args: PageArgs = {
          url: playOptions.url,
          protocol: playOptions.protocol,
          withCredentials: playOptions.withCredentials ?? false,
          maxSeconds: playOptions.maxSeconds,
          timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)),
          playbackRate: playOptions.playbackRate ?? 2,
        };
        const inPage = page.evaluate(
          (a: PageArgs) => (globalThis as unknown as { stPlay(a: PageArgs): Promise<PageResult> }).stPlay(a),
          args,
        );
        // If the harness timer below wins, the page's promise rejects later, when the page goes.
        void inPage.catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        let result: PageResult;
        try {
          result = await Promise.race([
            inPage,
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(new Error(`player.play: the page did not answer within ${timeoutMs + HARNESS_SLACK_MS} ms (renderer wedged?)`)),
                timeoutMs + HARNESS_SLACK_MS,
              );
            }),
          ]);
        } finally {
          clearTimeout(timer);
        }
        // Leave the page, so nothing the player still had in flight lands in the next play.
        await page.goto('about:blank', { timeout: 10_000 }).catch(() => undefined);
        return {
          ended: result.ended,
          playedSeconds: result.playedSeconds,
          currentTime: result.currentTime,
          duration: result.duration,
          ...(result.error === undefined ? {} : { error: result.error }),
          timedOut: result.timedOut,
          renditions: result.renditions,
          requests: run.requests,
          log: [...result.events, ...run.log],
          elapsedMs: Date.now() - started,
        };
      } finally {
        collecting = null;
        busy = false;
      }
    },
    setCookies: (cookies) => context.addCookies(cookies),
    cookies: (urls) => (urls === undefined ? context.cookies() : context.cookies(urls)),
    clearCookies: () => context.clearCookies(),
    async close() {
      if (closed) return;
      closed = true;
      onClose();
      await context.close().catch(() => undefined);
    },
  };
}

/** A one-line summary of a result for assertion messages. */
/**
 * Requests that did not answer 200, leaving out the ones the player cancelled itself: hls.js aborts
 * a segment load when it switches rung (ABR), which is its choice, not a refusal by the edge.
 */
export function notAnswered200(result: PlayResult): PlayedRequest[] {
  return result.requests.filter((request) => request.status !== 200 && !(request.status === 0 && request.failure === 'net::ERR_ABORTED'));
}

export function describePlay(result: PlayResult): string {
  const requests = result.requests.map((r) => `${r.status} ${r.method} ${r.url}${r.failure === undefined ? '' : ` (${r.failure})`}`);
  return [
    `ended=${result.ended} played=${result.playedSeconds.toFixed(2)}s of ${result.duration}s in ${result.elapsedMs} ms` +
      `${result.timedOut ? ' TIMED OUT' : ''} renditions=${result.renditions.join(',')}`,
    ...(result.error === undefined ? [] : [`error: ${result.error}`]),
    'requests:',
    ...requests.map((line) => `  ${line}`),
    'log:',
    ...result.log.map((line) => `  ${line}`),
  ].join('\n');
}
