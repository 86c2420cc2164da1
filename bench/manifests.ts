// The tokenized-manifest route under load (issue #9): GET /v1/manifests/<cdn>/<kid>/<expires>/<hmac>/…
// for a two-hour title (1,200 fMP4 segments per rendition, EXT-X-MAP) with the origin's manifest
// cached, for each signer that supports tokenized-manifest delivery, next to the Express hello-world
// baseline measured in the same run just before and after. Called by bench/playback.bench.ts after
// its own scenarios; prints its own table.
//
// Set-up, all on loopback, each server its own process:
//   - origin: bench/manifest-origin.ts serving synthetic playlists and MPDs written into a temp dir;
//   - st-api: one node per signer (embedded demo catalog, no MySQL or Redis), its CDN switched to
//     tokenized-manifest delivery against that origin, `manifests.freshSeconds` 3600 so every manifest
//     stays cached through the run;
//   - one play (POST /v1/playback-urls, demo token) per node: its manifest URL is fetched, master then
//     media playlist, and every URI checked against the CDN token recomputed here (CloudFront's ECDSA
//     signature verified with the public key); the manifest URLs of the load are signed here with the
//     key written into the node's config, and cross-checked byte for byte against the play's URL.
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { z } from 'zod';
import { parseConfig } from '../api/config.ts';
import { embeddedDemo, type EmbeddedDemo } from '../api/demo/embedded.ts';
import { ManifestTokens } from '../api/manifests/manifest-token.ts';
import { signerConfigSchema, signerFromConfig } from '../api/signing/config.ts';
import { printProfile } from './cpu-profile.ts';
import { runLoad, type LoadResult, type Prepared } from './load.ts';
import { REPO_ROOT, stApiServer, startNodeServer, type NodeServer } from '../testkit/node-server.ts';
import { baselineRun, DISTURBED_CPU_PERCENT, formatTable, log, mean, quietMachine, track, untrack, waitReady } from './steps.ts';

type SignerType = 'nginx' | 'akamai' | 'cloudfront';
type Kind = 'hls' | 'dash';

interface Spec {
  id: string;
  signer: SignerType;
  kind: Kind;
  /** Issue slots the pool's URLs come from: 1 = every viewer of a manifest shares one token. */
  slots: number;
  /** gzip: what browsers and players send (Accept-Encoding: gzip); identity: a client that does not. */
  encoding: 'gzip' | 'identity';
}

/** Grouped by signer: one st-api node per signer serves that signer's scenarios, in this order. */
const SPECS: readonly Spec[] = [
  { id: 'nginx-hls', signer: 'nginx', kind: 'hls', slots: 1, encoding: 'gzip' },
  { id: 'nginx-hls-8slots', signer: 'nginx', kind: 'hls', slots: 8, encoding: 'gzip' },
  { id: 'nginx-hls-identity', signer: 'nginx', kind: 'hls', slots: 1, encoding: 'identity' },
  { id: 'akamai-hls', signer: 'akamai', kind: 'hls', slots: 1, encoding: 'gzip' },
  { id: 'cloudfront-hls', signer: 'cloudfront', kind: 'hls', slots: 1, encoding: 'gzip' },
  { id: 'cloudfront-hls-identity', signer: 'cloudfront', kind: 'hls', slots: 1, encoding: 'identity' },
  { id: 'cloudfront-dash', signer: 'cloudfront', kind: 'dash', slots: 1, encoding: 'gzip' },
];
export const MANIFEST_SCENARIOS: readonly string[] = SPECS.map((spec) => spec.id);
const SIGNERS: readonly SignerType[] = [...new Set(SPECS.map((spec) => spec.signer))];

const TARGET_RATIO = 0.5;
const CONNECTIONS = 50;
/** Two hours of 6 s segments. */
const SEGMENTS = 1200;
const SEGMENT_SECONDS = 6;
const TITLES = 100;
/** Rungs under the 1080p ceiling: an HLS master with three variants, a DASH MPD with three representations. */
const RUNGS = [1080, 720, 480] as const;
const POOL_SIZE = TITLES * RUNGS.length;
/** playback's URL_SLOT_SECONDS: consecutive issue slots differ by this in their expiry. */
const SLOT_SECONDS = 30;
const PUBLIC_URL = 'https://play.bench.invalid';
const MANIFEST_KEY_ID = 'bench-1';
const DEMO_TITLE = 'tt-demo-0001';
const CDN_NAME: Record<SignerType, string> = { nginx: 'origin-nginx', akamai: 'akamai', cloudfront: 'cloudfront' };

export interface ManifestBenchOptions {
  timing: { warmupSeconds: number; measureSeconds: number };
  /** The baseline's requests (POST /v1/playback-urls); by default 50 demo plays. */
  baselinePool?: readonly Prepared[];
  /** Scenario ids to run again under node --cpu-prof after the measurements. */
  profile?: readonly string[];
}

interface Row {
  name: string;
  kind: 'baseline' | 'manifest';
  load: LoadResult;
  spec?: Spec;
  /** Bytes of the verified sample answer (body). */
  bodyBytes?: number;
  /** st-api's resident memory after the window. */
  rssMb?: number | undefined;
  /** Origin-cache lookups and origin fetches during the window. */
  cacheHits?: number;
  originFetches?: number;
}

/** One load entry: the request path and what the answer must be. */
interface Entry {
  path: string;
  /** The catalog path of the document, e.g. `/vod/t/hls/1080p/480p/index.m3u8`. */
  documentPath: string;
  scopePath: string;
  expires: number;
}

interface Node {
  signer: SignerType;
  server: NodeServer;
  cdn: { name: string; origin: string; signer: z.input<typeof signerConfigSchema> };
  tokens: ManifestTokens;
  policy: { urlTtlSeconds: number; clockSkewSeconds: number };
  /** Expiry of the URLs issued in the current slot (from the sample play). */
  expires: number;
}

/** Runs every tokenized-manifest scenario and prints the table; the processes it starts are its own. */
export async function runManifestBench(options: ManifestBenchOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'st-bench-manifests-'));
  const servers = new Set<NodeServer>();
  try {
    const titles = Array.from({ length: TITLES }, (_, index) => `tt-bench-${String(index + 1).padStart(4, '0')}`);
    const bytes = writeOrigin(join(dir, 'origin'), [DEMO_TITLE, ...titles]);
    log(
      `manifests: wrote ${TITLES + 1} titles (HLS master + ${RUNGS.length} media playlists of ${SEGMENTS} segments, DASH MPDs) = ${(bytes / 1e6).toFixed(1)} MB`,
    );
    const origin = await track(
      servers,
      startNodeServer({
        name: 'manifest-origin',
        script: join('bench', 'manifest-origin.ts'),
        env: { ...process.env, ORIGIN_DIR: join(dir, 'origin') },
        listeningMessage: 'origin listening',
      }),
    );
    const demo = embeddedDemo();
    const baselinePool = options.baselinePool ?? defaultBaselinePool(demo);
    const rows: Row[] = [];

    const pick = () => baselinePool[Math.floor(Math.random() * baselinePool.length)] as Prepared;
    const baseline = async (name: string) => {
      const load = await baselineRun(servers, name, pick, {
        connections: CONNECTIONS,
        timing: options.timing,
        watch: (server) => ({ server: server.pid, origin: origin.pid }),
      });
      rows.push({ name, kind: 'baseline', load });
    };

    for (const signer of SIGNERS) {
      await baseline(`baseline (before ${signer})`);
      const node = await startNode(servers, dir, demo, signer, origin);
      try {
        for (const spec of SPECS.filter((candidate) => candidate.signer === signer)) {
          rows.push(await measure(node, spec, titles, options.timing, origin));
        }
      } finally {
        await untrack(servers, node.server);
      }
    }
    await baseline('baseline (end)');
    printReport(rows, options.timing);

    for (const id of options.profile ?? []) {
      const spec = SPECS.find((candidate) => candidate.id === id);
      if (spec === undefined) throw new Error(`no manifest scenario ${id} (one of ${MANIFEST_SCENARIOS.join(', ')})`);
      const profileDir = join(dir, `cpu-profile-${id}`);
      const node = await startNode(servers, dir, demo, spec.signer, origin, profileDir);
      let row: Row;
      try {
        row = await measure(node, spec, titles, options.timing, origin);
      } finally {
        await untrack(servers, node.server);
      }
      printProfile(profileDir, REPO_ROOT, [
        `CPU profile (node --cpu-prof) of the st-api process, manifests ${row.name}: ${row.load.requestsPerSecond.toFixed(0)} req/s, p99 ${row.load.p99} ms, ${row.load.non2xx} non-2xx under the profiler;`,
        '  covers start-up, the sample play, priming (origin fetches), warm-up and measurement;',
      ]);
    }
  } finally {
    await Promise.allSettled([...servers].map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The origin's files

function hlsMaster(): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const rung of RUNGS) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${rung * 4000},RESOLUTION=${Math.round((rung * 16) / 9)}x${rung},CODECS="avc1.640028,mp4a.40.2"`,
      `${rung}p/index.m3u8`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function hlsMedia(): string {
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${SEGMENT_SECONDS}`,
    '#EXT-X-MEDIA-SEQUENCE:1',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    '#EXT-X-MAP:URI="init.mp4"',
  ];
  for (let n = 1; n <= SEGMENTS; n += 1) lines.push(`#EXTINF:${SEGMENT_SECONDS.toFixed(3)},`, segmentName(n));
  lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

const segmentName = (n: number) => `seg-${String(n).padStart(5, '0')}.m4s`;

/** SegmentTemplate without SegmentTimeline: $Number$ over a fixed duration, 1,200 segments for two hours. */
function dashMpd(ceiling: number): string {
  const template = `<SegmentTemplate timescale="1000" duration="${SEGMENT_SECONDS * 1000}" startNumber="1" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg-$Number%05d$.m4s"/>`;
  const video = RUNGS.filter((rung) => rung <= ceiling).map(
    (rung) =>
      `      <Representation id="${rung}p" codecs="avc1.640028" bandwidth="${rung * 4000}" width="${Math.round((rung * 16) / 9)}" height="${rung}"/>`,
  );
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT${(SEGMENTS * SEGMENT_SECONDS) / 3600}H0M0S" minBufferTime="PT2S">`,
    '  <Period id="0" start="PT0S">',
    '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">',
    `      ${template}`,
    ...video,
    '    </AdaptationSet>',
    '    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="en" segmentAlignment="true" startWithSAP="1">',
    `      ${template}`,
    '      <Representation id="audio" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000"/>',
    '    </AdaptationSet>',
    '  </Period>',
    '</MPD>',
    '',
  ].join('\n');
}

/** Per title: hls/1080p/master.m3u8 + its variants' media playlists; dash/<ceiling>p/manifest.mpd per rung. Returns bytes written. */
function writeOrigin(root: string, titles: readonly string[]): number {
  const master = hlsMaster();
  const media = hlsMedia();
  let bytes = 0;
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
    bytes += text.length;
  };
  for (const title of titles) {
    write(`vod/${title}/hls/1080p/master.m3u8`, master);
    for (const rung of RUNGS) write(`vod/${title}/hls/1080p/${rung}p/index.m3u8`, media);
    for (const ceiling of RUNGS) write(`vod/${title}/dash/${ceiling}p/manifest.mpd`, dashMpd(ceiling));
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// st-api nodes

function writeConfig(dir: string, demo: EmbeddedDemo, signer: SignerType, originUrl: string, manifestSecret: string): string {
  const cdns = demo.rawConfig['cdns'] as { name: string; signer: { type: string } }[];
  const cdn = cdns.find((entry) => entry.signer.type === signer);
  if (cdn === undefined || cdn.name !== CDN_NAME[signer])
    throw new Error(`the embedded demo has no ${signer} CDN named ${CDN_NAME[signer]}`);
  const raw: Record<string, unknown> = {
    ...demo.rawConfig,
    listen: { host: '127.0.0.1', port: 0 },
    logLevel: 'info',
    shutdown: { drainMs: 0, timeoutMs: 5000 },
    cdns: [{ ...cdn, weight: 1, delivery: { mode: 'tokenized-manifest', manifestOrigin: originUrl } }],
    // The whole run inside freshSeconds: every request after the first of a manifest is a cache hit.
    manifests: {
      publicUrl: PUBLIC_URL,
      keys: [{ id: MANIFEST_KEY_ID, active: true, secret: manifestSecret }],
      freshSeconds: 3600,
      staleSeconds: 3600,
    },
  };
  parseConfig(raw, {}); // fail here, with every bad key named, rather than in the child
  const file = join(dir, `st-api-manifests-${signer}.json`);
  writeFileSync(file, JSON.stringify(raw), { mode: 0o600 });
  return file;
}

async function startNode(
  servers: Set<NodeServer>,
  dir: string,
  demo: EmbeddedDemo,
  signer: SignerType,
  origin: NodeServer,
  cpuProfileDir?: string,
): Promise<Node> {
  const secret = randomBytes(32).toString('base64url');
  const file = writeConfig(dir, demo, signer, origin.baseUrl, secret);
  const config = parseConfig(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>, {});
  const rawCdn = (JSON.parse(readFileSync(file, 'utf8')) as { cdns: Node['cdn'][] }).cdns[0];
  if (rawCdn === undefined) throw new Error('no CDN in the written configuration');
  const server = await track(servers, stApiServer(file, cpuProfileDir));
  await waitReady(server);
  const node: Node = {
    signer,
    server,
    cdn: rawCdn,
    tokens: new ManifestTokens([{ id: MANIFEST_KEY_ID, active: true, material: secret }]),
    policy: { urlTtlSeconds: config.playback.urlTtlSeconds, clockSkewSeconds: config.playback.clockSkewSeconds },
    expires: 0,
  };
  node.expires = await samplePlay(node, demo);
  return node;
}

/**
 * One play through the node; its manifest URL must be exactly what this module signs for the same
 * (cdn, expiry, scope), and the master and one media playlist behind it must check out. Returns the
 * expiry of the URLs issued in the current slot.
 */
async function samplePlay(node: Node, demo: EmbeddedDemo): Promise<number> {
  const response = await fetch(`${node.server.baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${demo.tokenFor('demo-user')}` },
    body: JSON.stringify({ contentId: DEMO_TITLE, device: 'web', protocol: 'hls' }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${node.signer}: sample play answered ${response.status}: ${text.slice(0, 300)}`);
  const answer = JSON.parse(text) as { url?: unknown; delivery?: unknown; cdn?: unknown; expiresAt?: unknown; cookies?: unknown };
  const documentPath = `/vod/${DEMO_TITLE}/hls/1080p/master.m3u8`;
  const scopePath = `/vod/${DEMO_TITLE}/hls/1080p/`;
  const expires = Date.parse(String(answer.expiresAt)) / 1000;
  const expected = `${PUBLIC_URL}${node.tokens.pathPrefix({ cdn: node.cdn.name, expires, scopePath })}${documentPath}`;
  if (
    answer.delivery !== 'tokenized-manifest' ||
    answer.cdn !== node.cdn.name ||
    answer.cookies !== undefined ||
    answer.url !== expected ||
    !Number.isInteger(expires)
  ) {
    throw new Error(
      `${node.signer}: sample play is not the tokenized-manifest URL signed here\n  got ${text.slice(0, 400)}\n  expected url ${expected}`,
    );
  }
  const masterPath = new URL(expected).pathname;
  const master = await fetch(node.server.baseUrl + masterPath, { signal: AbortSignal.timeout(5000) });
  const masterText = await master.text();
  if (master.status !== 200 || masterText !== hlsMaster())
    throw new Error(
      `${node.signer}: the master playlist came back ${master.status}, not the origin's master unchanged: ${masterText.slice(0, 300)}`,
    );
  // What a player does next: a variant relative to the master, under the same path token.
  const variantPath = new URL(`${RUNGS[RUNGS.length - 1]}p/index.m3u8`, `http://x${masterPath}`).pathname;
  await verifyAnswer(
    node,
    { path: variantPath, documentPath: `${scopePath}${RUNGS[RUNGS.length - 1]}p/index.m3u8`, scopePath, expires },
    'hls',
  );
  log(
    `manifests ${node.signer}: sample play ${DEMO_TITLE} checked (URL as signed here, master unchanged, ${SEGMENTS} segments + EXT-X-MAP tokenized)`,
  );
  return expires;
}

// ---------------------------------------------------------------------------------------------
// Checking an answer

/** Fetches one entry and checks every media URI in it against the CDN token; returns the body's bytes. */
async function verifyAnswer(node: Node, entry: Entry, kind: Kind): Promise<number> {
  const response = await fetch(node.server.baseUrl + entry.path, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  const what = `${node.signer} ${entry.path}`;
  if (response.status !== 200) throw new Error(`${what}: answered ${response.status}: ${text.slice(0, 300)}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith(kind === 'hls' ? 'application/vnd.apple.mpegurl' : 'application/dash+xml'))
    throw new Error(`${what}: content-type ${type}`);
  if (response.headers.get('cache-control') !== 'private, max-age=60')
    throw new Error(`${what}: cache-control ${response.headers.get('cache-control')}`);
  const cdnDirectory = `${node.cdn.origin}${entry.documentPath.slice(0, entry.documentPath.lastIndexOf('/') + 1)}`;
  if (kind === 'hls') {
    const lines = text.split('\n');
    const map = lines.find((line) => line.startsWith('#EXT-X-MAP:')) ?? '';
    const mapUri = /URI="([^"]*)"/.exec(map)?.[1] ?? '';
    const query = mapUri.slice(mapUri.indexOf('?') + 1);
    if (!mapUri.startsWith(`${cdnDirectory}init.mp4?`)) throw new Error(`${what}: EXT-X-MAP is ${map}`);
    checkToken(node, entry, query);
    const segments = lines.filter((line) => line !== '' && !line.startsWith('#'));
    const wrong = segments.findIndex((line, index) => line !== `${cdnDirectory}${segmentName(index + 1)}?${query}`);
    if (segments.length !== SEGMENTS || wrong !== -1)
      throw new Error(`${what}: ${segments.length} segment lines, first without the token: ${segments[wrong] ?? '(count)'}`);
    const expected = hlsMedia()
      .replace('URI="init.mp4"', `URI="${mapUri}"`)
      .replace(/^seg-.*$/gm, (name) => `${cdnDirectory}${name}?${query}`);
    if (text !== expected) throw new Error(`${what}: the playlist differs from the origin's beyond its URIs`);
  } else {
    if (!text.includes(`<BaseURL>${cdnDirectory}</BaseURL>`)) throw new Error(`${what}: no MPD-level BaseURL ${cdnDirectory}`);
    const values = [...text.matchAll(/\s(?:media|initialization)="([^"]*)"/g)].map((match) => match[1] ?? '');
    const first = values[0] ?? '';
    const query = first.slice(first.indexOf('?') + 1).replaceAll('&amp;', '&');
    checkToken(node, entry, query);
    const templates = (text.match(/<SegmentTemplate /g) ?? []).length;
    if (
      values.length !== 2 * templates ||
      templates !== 2 ||
      values.some((value) => !value.endsWith(`?${query.replaceAll('&', '&amp;')}`))
    ) {
      throw new Error(`${what}: not every media and initialization attribute carries the token: ${values.join(' ')}`);
    }
  }
  return Buffer.byteLength(text);
}

/**
 * The CDN token in an answer must be the one the CDN's signer makes for this scope and expiry, with
 * the not-before the route uses. HMAC schemes are compared byte for byte; CloudFront's ECDSA
 * signature is randomised, so its policy is compared and its signature verified with the public key.
 */
function checkToken(node: Node, entry: Entry, query: string): void {
  const signer = signerFromConfig(signerConfigSchema.parse(node.cdn.signer));
  const expected = signer.queryToken({
    origin: node.cdn.origin,
    manifestPath: entry.documentPath,
    scopePath: entry.scopePath,
    notBefore: new Date((entry.expires - node.policy.urlTtlSeconds - node.policy.clockSkewSeconds) * 1000),
    expiresAt: new Date(entry.expires * 1000),
  });
  const wrong = (why: string) => new Error(`${node.signer} ${entry.path}: CDN token ${why}: ${query.slice(0, 200)}`);
  if (node.cdn.signer.type !== 'cloudfront') {
    if (query !== expected.map(([name, value]) => `${name}=${value}`).join('&')) throw wrong('is not the one the signer makes');
    return;
  }
  const got = query.split('&').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const);
  if (got.map(([name]) => name).join() !== expected.map(([name]) => name).join()) throw wrong('has other parameters');
  for (const [index, [name, value]] of got.entries()) {
    if (name !== 'Signature' && value !== expected[index]?.[1]) throw wrong(`differs in ${name}`);
  }
  const fromCloudFront = (value: string) => Buffer.from(value.replaceAll('-', '+').replaceAll('_', '=').replaceAll('~', '/'), 'base64');
  const policy = fromCloudFront(got.find(([name]) => name === 'Policy')?.[1] ?? '');
  const signature = fromCloudFront(got.find(([name]) => name === 'Signature')?.[1] ?? '');
  const key = node.cdn.signer.keys[0];
  if (key === undefined || !('privateKey' in key) || typeof key.privateKey !== 'string')
    throw wrong('cannot be verified: no PEM key in the config');
  if (!verify('sha256', policy, createPublicKey(key.privateKey), signature)) throw wrong('has a signature that does not verify');
}

// ---------------------------------------------------------------------------------------------
// Measuring

/**
 * The URLs of a scenario: TITLES × RUNGS documents in one slot (300 URLs, 300 manifests), or, with
 * several slots, enough titles for about the same number of URLs, each document under `slots`
 * different expiries (as viewers who started in different slots ask for it).
 */
function poolOf(node: Node, spec: Spec, titles: readonly string[]): Entry[] {
  const used = titles.slice(0, Math.ceil(POOL_SIZE / RUNGS.length / spec.slots));
  const entries: Entry[] = [];
  for (let slot = 0; slot < spec.slots; slot += 1) {
    const expires = node.expires - slot * SLOT_SECONDS;
    for (const title of used) {
      for (const rung of RUNGS) {
        const scopePath = spec.kind === 'hls' ? `/vod/${title}/hls/1080p/` : `/vod/${title}/dash/${rung}p/`;
        const documentPath = spec.kind === 'hls' ? `${scopePath}${rung}p/index.m3u8` : `${scopePath}manifest.mpd`;
        entries.push({
          path: node.tokens.pathPrefix({ cdn: node.cdn.name, expires, scopePath }) + documentPath,
          documentPath,
          scopePath,
          expires,
        });
      }
    }
  }
  return entries;
}

async function measure(
  node: Node,
  spec: Spec,
  titles: readonly string[],
  timing: ManifestBenchOptions['timing'],
  origin: NodeServer,
): Promise<Row> {
  const name = `${spec.signer} ${spec.kind}${spec.slots > 1 ? ` (${spec.slots} slots)` : ''}${spec.encoding === 'identity' ? ' identity' : ' gzip'}`;
  const pool = poolOf(node, spec, titles);
  const base = {
    baseUrl: node.server.baseUrl,
    connections: CONNECTIONS,
    ...(spec.encoding === 'gzip' ? { headers: { 'accept-encoding': 'gzip' } } : {}),
  };
  const watch = { server: node.server.pid, origin: origin.pid };
  // Every URL once: each manifest fetched from the origin and each CDN token signed before the window.
  const primed = await runLoad({ ...base, pickPath: (sequence) => pool[sequence % pool.length]?.path ?? '/', amount: pool.length });
  if (primed.non2xx > 0 || primed.errors > 0)
    throw new Error(`${name}: priming: ${primed.non2xx} non-2xx (${JSON.stringify(primed.statusCounts)}), ${primed.errors} errors`);
  const sample = pool[Math.floor(Math.random() * pool.length)] as Entry;
  const bodyBytes = await verifyAnswer(node, sample, spec.kind);
  const pickPath = () => (pool[Math.floor(Math.random() * pool.length)] as Entry).path;
  await runLoad({ ...base, pickPath, durationSeconds: timing.warmupSeconds });
  await quietMachine(watch);
  const before = await scrape(node.server);
  const load = await runLoad({ ...base, pickPath, durationSeconds: timing.measureSeconds, watch });
  const after = await scrape(node.server);
  const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
  const rssMb = residentMb(node.server.pid);
  log(
    `${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.p99} ms, non-2xx ${load.non2xx}, ${(bodyBytes / 1024).toFixed(0)} KB per answer`,
  );
  return { name, kind: 'manifest', spec, load, bodyBytes, rssMb, cacheHits: delta('cache/hit'), originFetches: delta('cache/miss') };
}

async function scrape(server: NodeServer): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const cache = /^st_api_manifest_cache_lookups_total\{cdn="[^"]+",result="([^"]+)"\} (\S+)$/.exec(line);
    if (cache !== null) counts[`cache/${cache[1]}`] = (counts[`cache/${cache[1]}`] ?? 0) + Number(cache[2]);
  }
  return counts;
}

function residentMb(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** The baseline's requests when the caller has none: demo plays, the same shape as the playback bench's. */
function defaultBaselinePool(demo: EmbeddedDemo): Prepared[] {
  return Array.from({ length: 50 }, (_, index) => ({
    authorization: `Bearer ${demo.tokenFor(`bench-user-${index}`)}`,
    body: JSON.stringify({ contentId: `tt${String(index).padStart(7, '0')}`, device: 'web', quality: 'auto' }),
  }));
}

// ---------------------------------------------------------------------------------------------
// Report

function printReport(rows: readonly Row[], timing: ManifestBenchOptions['timing']): void {
  const baselines = rows.filter((row) => row.kind === 'baseline');
  const reference = (row: Row): { rps: number; p99: number } => {
    const index = rows.indexOf(row);
    const bracket = [
      rows.slice(0, index).findLast((other) => other.kind === 'baseline'),
      rows.slice(index + 1).find((other) => other.kind === 'baseline'),
    ].filter((other) => other !== undefined);
    return { rps: mean(bracket.map((other) => other.load.requestsPerSecond)), p99: mean(bracket.map((other) => other.load.p99)) };
  };
  const out: string[] = [
    '',
    `st-api tokenized-manifest bench — ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), node ${process.version}, ${process.platform}/${process.arch}`,
    `load: autocannon (in the bench process), ${CONNECTIONS} connections, pipelining 1; per scenario ${timing.warmupSeconds} s warm-up, then ${timing.measureSeconds} s measured`,
    `route: GET /v1/manifests/<cdn>/<kid>/<expires>/<hmac>/vod/<title>/…, st-api (embedded catalog, no MySQL/Redis) in its own process,`,
    `      origin = bench/manifest-origin.ts (node:http, static files) on loopback; manifests.freshSeconds 3600, every URL requested once before`,
    `      the window, so every manifest is cached and every CDN token signed (origin fetches in the window: column "fetch").`,
    `hls: media playlist, ${SEGMENTS} fMP4 segments of ${SEGMENT_SECONDS} s + EXT-X-MAP; ${POOL_SIZE} URLs = ${TITLES} titles × ${RUNGS.length} variants, uniform random,`,
    `      all issued in one slot (viewers of a manifest share its token; st-api keeps the last rendering per manifest).`,
    `      "(8 slots)": ${Math.ceil(POOL_SIZE / RUNGS.length / 8)} titles × ${RUNGS.length} variants × 8 issue slots, so consecutive requests for a manifest mostly carry another token.`,
    `dash: MPD with SegmentTemplate ($Number$, duration, no SegmentTimeline: ${SEGMENTS} segments) per adaptation set; ${TITLES} titles × ${RUNGS.length} ceilings.`,
    `baseline: Express hello-world POST /v1/playback-urls (as in the playback bench), run before each signer and at the end.`,
    '',
  ];
  const header = [
    'scenario',
    'req/s',
    '×base',
    'rps target',
    'p50 ms',
    'p99 ms',
    '×base p99',
    'non-2xx',
    'errors',
    'KB/answer',
    'MB/s',
    'fetch',
    'RSS MB',
    'CPU % srv/origin/ab/other',
  ];
  const table: string[][] = [header];
  for (const row of rows) {
    const { load } = row;
    const { rps, p99 } = reference(row);
    const ratio = load.requestsPerSecond / rps;
    const valid = load.non2xx === 0 && load.errors === 0;
    const isBase = row.kind === 'baseline';
    table.push([
      row.name,
      load.requestsPerSecond.toFixed(0),
      isBase ? '' : ratio.toFixed(2),
      isBase ? '' : `≥${TARGET_RATIO.toFixed(2)} ${valid ? (ratio >= TARGET_RATIO ? 'PASS' : 'MISS') : 'INVALID'}`,
      load.p50.toFixed(1),
      load.p99.toFixed(1),
      isBase ? '' : (load.p99 / p99).toFixed(2),
      String(load.non2xx),
      String(load.errors),
      row.bodyBytes === undefined ? '' : (row.bodyBytes / 1024).toFixed(1),
      (load.bytesPerSecond / 1e6).toFixed(1),
      row.originFetches === undefined ? '' : String(row.originFetches),
      row.rssMb === undefined ? '' : row.rssMb.toFixed(0),
      ['server', 'origin', 'autocannon', 'other'].map((key) => (load.cpu[key] === undefined ? '-' : load.cpu[key].toFixed(0))).join('/'),
    ]);
  }
  out.push(...formatTable(table, new Set([0, 3])));
  out.push('');
  const spread = baselines.map((row) => row.load.requestsPerSecond);
  out.push(
    `baseline: ${baselines.length} runs, ${Math.min(...spread).toFixed(0)}-${Math.max(...spread).toFixed(0)} req/s; each scenario's ×base uses the mean of the two baseline runs around it`,
  );
  out.push(
    `KB/answer: the body of one checked answer; MB/s: response bytes received by autocannon; fetch: origin fetches during the window (0 = cached);`,
  );
  out.push(
    `      RSS: st-api's resident memory after the window; CPU: % of one core (${availableParallelism() * 100} % = all cores), other = not this bench.`,
  );
  out.push(`target: ≥ ${TARGET_RATIO * 100} % of the baseline's req/s (issue #9); p99 is reported, not targeted.`);
  const manifests = rows.filter((row) => row.kind === 'manifest');
  for (const row of rows.filter((candidate) => candidate.load.non2xx > 0 || candidate.load.errors > 0)) {
    out.push(
      `INVALID ${row.name}: ${row.load.non2xx} non-2xx (${JSON.stringify(row.load.statusCounts)}), ${row.load.errors} errors (${row.load.timeouts} timeouts)`,
    );
  }
  for (const row of manifests.filter((candidate) => (candidate.originFetches ?? 0) > 0))
    out.push(`note ${row.name}: ${row.originFetches} origin fetches during the window: not all cached`);
  const disturbed = rows.filter((row) => (row.load.cpu['other'] ?? 0) > DISTURBED_CPU_PERCENT);
  if (disturbed.length > 0)
    out.push(
      `disturbed: other load above ${DISTURBED_CPU_PERCENT} % of a core during ${disturbed.map((row) => row.name).join(', ')}; rerun for a clean figure`,
    );
  const misses = manifests.filter((row) => row.load.requestsPerSecond / reference(row).rps < TARGET_RATIO);
  out.push(
    misses.length === 0
      ? 'result: every target met'
      : `result: ${misses.length} of ${manifests.length} scenarios miss the target: ${misses.map((row) => row.name).join(', ')}`,
  );
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}
