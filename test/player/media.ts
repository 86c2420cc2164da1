// Real test media for the player tests, encoded by ffmpeg at test time (no
// binary fixtures in git) in the ORIGIN STORAGE LAYOUT the edge configs map
// public URLs onto. Keep the layout exactly as written here:
//
//   <root>/<title>/<rung>/init.mp4              fMP4 (CMAF) init segment, rung = "<height>p"
//   <root>/<title>/<rung>/seg-<n>.m4s           1-second fMP4 media segments, n = 1, 2, 3, …
//   <root>/<title>/<rung>/index.m3u8            HLS media playlist (VERSION 7, VOD, EXT-X-MAP init.mp4)
//   <root>/<title>/hls/<ceiling>/master.m3u8    HLS master: only rungs <= ceiling, as "<rung>/index.m3u8"
//   <root>/<title>/dash/<ceiling>/manifest.mpd  DASH MPD: one Representation per rung <= ceiling, id "<rung>",
//                                               SegmentTemplate "$RepresentationID$/init.mp4" and
//                                               "$RepresentationID$/seg-$Number$.m4s"
//
// Media is stored once per rung and shared by HLS and DASH and by every ceiling;
// children are relative to the manifest, so the edge maps
// /vod/<title>/<hls|dash>/<ceiling>/<rung>/<file> onto <root>/<title>/<rung>/<file>.
//
// Codec: H.264 (libx264) in fMP4. Debian's Chromium is built with the
// proprietary codecs: MediaSource.isTypeSupported('video/mp4; codecs="avc1.…"')
// is true and both players decode it (checked by test/player/harness.test.ts),
// and H.264 is what production packagers emit.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const REPO_ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const DEFAULT_CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'st-api-test-media');
const FFMPEG = '/usr/bin/ffmpeg';
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const FPS = 24;
// Bump when the encoding recipe changes, so cached media is made again.
const RECIPE_VERSION = 1;
// Low on purpose: hls.js's default 500 kbps starting estimate then picks a
// low rung first and climbs, so a short clip exercises more than one level.
const BITS_PER_PIXEL = 0.035;

export interface TitleSpec {
  /** Used as a path segment and burnt into the picture: letters, digits, '.', '_', '-'. */
  readonly id: string;
  /** Heights, e.g. [1080, 480]; each becomes a rung "<height>p" at 16:9. */
  readonly rungs: readonly number[];
}

export interface GenerateMediaOptions {
  /** Whole seconds of video, one segment each; default 4. */
  readonly seconds?: number;
  /** Per ffmpeg run; it is SIGKILLed after this. Default 120 s. */
  readonly timeoutMs?: number;
  /** Where encoded rungs are kept across runs; default node_modules/.cache/st-api-test-media. */
  readonly cacheDir?: string;
}

export interface GeneratedRung {
  /** "480p" */
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** RFC 6381 codec string read from the init segment's avcC, e.g. "avc1.42c01e". */
  readonly codecs: string;
  /** Peak bits per second over the segments (what HLS BANDWIDTH must be at least). */
  readonly bandwidth: number;
  readonly averageBandwidth: number;
  /** Number of segments: seg-1.m4s … seg-<segments>.m4s. */
  readonly segments: number;
  /** The mdhd timescale, used by the MPD's SegmentTemplate. */
  readonly timescale: number;
  /** True when ffmpeg ran this time, false when copied from the cache. */
  readonly encoded: boolean;
}

export interface GeneratedTitle {
  readonly id: string;
  /** Highest first. */
  readonly rungs: readonly GeneratedRung[];
  /** Ceiling names, e.g. ["1080p", "480p"]: the dirs under hls/ and dash/. */
  readonly ceilings: readonly string[];
}

export interface GeneratedMedia {
  readonly root: string;
  readonly seconds: number;
  readonly titles: readonly GeneratedTitle[];
}

/** "<height>p" */
export function rungName(height: number): string {
  return `${height}p`;
}

/** 16:9 width, rounded to even (4:2:0 needs it): 1080 → 1920, 480 → 854, 240 → 426. */
export function rungWidth(height: number): number {
  return Math.round((height * 16) / 9 / 2) * 2;
}

/**
 * Writes every title's rungs, HLS masters and DASH MPDs under `root` (created
 * if missing). Rungs come from the cache when an identical one was encoded
 * before (same title, height, length, recipe and ffmpeg build).
 */
export async function generateMedia(
  root: string,
  titles: readonly TitleSpec[],
  options: GenerateMediaOptions = {},
): Promise<GeneratedMedia> {
  const seconds = options.seconds ?? 4;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600)
    throw new Error(`generateMedia: seconds must be a whole number in 1..600, got ${seconds}`);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR;
  const ffmpegVersion = await ffmpegVersionLine(timeoutMs);
  await sweepAbandonedWork(cacheDir);
  const drawtext = existsSync(FONT);

  const generated: GeneratedTitle[] = [];
  for (const title of titles) {
    if (!/^[A-Za-z0-9._-]+$/.test(title.id) || title.id.startsWith('.'))
      throw new Error(`generateMedia: unusable title id ${JSON.stringify(title.id)}`);
    const heights = [...new Set(title.rungs)].sort((a, b) => b - a);
    if (heights.length === 0) throw new Error(`generateMedia: title ${title.id} has no rungs`);
    for (const height of heights) {
      if (!Number.isInteger(height) || height < 64 || height > 2160 || height % 2 !== 0)
        throw new Error(`generateMedia: unusable rung height ${height} for ${title.id}`);
    }

    const rungs: GeneratedRung[] = [];
    for (const height of heights) {
      const key = createHash('sha256')
        .update(JSON.stringify({ recipe: RECIPE_VERSION, ffmpeg: ffmpegVersion, drawtext, title: title.id, height, seconds }))
        .digest('hex')
        .slice(0, 24);
      const cached = join(cacheDir, key);
      let encoded = false;
      if (!existsSync(join(cached, 'index.m3u8'))) {
        await encodeRung(cacheDir, cached, { title: title.id, height, seconds, drawtext, timeoutMs });
        encoded = true;
      }
      const rungDir = join(root, title.id, rungName(height));
      // Copies, not hard links: tests delete or overwrite files under root to
      // provoke errors, and a shared inode would carry that into the cache.
      await mkdir(rungDir, { recursive: true });
      for (const file of await readdir(cached)) await copyFile(join(cached, file), join(rungDir, file));
      rungs.push({ ...(await describeRung(rungDir, height, seconds)), encoded });
    }

    const ceilings = rungs.map((rung) => rung.name);
    for (const [index, ceiling] of ceilings.entries()) {
      const included = rungs.slice(index);
      await mkdir(join(root, title.id, 'hls', ceiling), { recursive: true });
      await writeFile(join(root, title.id, 'hls', ceiling, 'master.m3u8'), hlsMaster(included));
      await mkdir(join(root, title.id, 'dash', ceiling), { recursive: true });
      await writeFile(join(root, title.id, 'dash', ceiling, 'manifest.mpd'), dashManifest(included, seconds));
    }
    generated.push({ id: title.id, rungs, ceilings });
  }
  return { root, seconds, titles: generated };
}

// A run killed mid-encode leaves its .tmp- dir; one untouched for an hour is nobody's.
async function sweepAbandonedWork(cacheDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(cacheDir);
  } catch {
    return;
  }
  for (const entry of entries.filter((name) => name.startsWith('.tmp-'))) {
    const dir = join(cacheDir, entry);
    const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    if (age > 3_600_000) await rm(dir, { recursive: true, force: true });
  }
}

async function ffmpegVersionLine(timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await execFileAsync(FFMPEG, ['-hide_banner', '-version'], { timeout: timeoutMs, killSignal: 'SIGKILL' });
    return stdout.split('\n')[0] ?? stdout;
  } catch (error) {
    throw new Error(`generateMedia: cannot run ${FFMPEG} -version (install ffmpeg from Debian)`, { cause: error });
  }
}

interface EncodeSpec {
  readonly title: string;
  readonly height: number;
  readonly seconds: number;
  readonly drawtext: boolean;
  readonly timeoutMs: number;
}

async function encodeRung(cacheDir: string, target: string, spec: EncodeSpec): Promise<void> {
  const width = rungWidth(spec.height);
  const kbps = Math.round((width * spec.height * FPS * BITS_PER_PIXEL) / 1000);
  // Encode beside the target and rename, so a killed run or a concurrent one
  // never leaves (or reads) a half-written cache entry.
  const work = join(cacheDir, `.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(work, { recursive: true });
  try {
    const filters = spec.drawtext
      ? [
          `drawtext=fontfile=${FONT}:text='${spec.title} ${rungName(spec.height)}':fontsize=${Math.round(spec.height / 10)}:` +
            'fontcolor=white:box=1:boxcolor=black@0.6:x=(w-text_w)/2:y=h/12',
        ]
      : [];
    const args = [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${width}x${spec.height}:rate=${FPS}:duration=${spec.seconds}`,
      ...(filters.length > 0 ? ['-vf', filters.join(',')] : []),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      '-b:v',
      `${kbps}k`,
      '-maxrate',
      `${kbps}k`,
      '-bufsize',
      `${kbps}k`,
      // A keyframe every 24 frames and nowhere else, no B-frames: every
      // segment is exactly 1 s and starts with an IDR, which the MPD's fixed
      // SegmentTemplate duration and rung switching both rely on.
      '-g',
      String(FPS),
      '-keyint_min',
      String(FPS),
      '-sc_threshold',
      '0',
      '-bf',
      '0',
      '-f',
      'hls',
      '-hls_time',
      '1',
      '-hls_playlist_type',
      'vod',
      '-hls_segment_type',
      'fmp4',
      '-hls_fmp4_init_filename',
      'init.mp4',
      '-hls_segment_filename',
      join(work, 'seg-%d.m4s'),
      '-start_number',
      '1',
      join(work, 'index.m3u8'),
    ];
    try {
      await execFileAsync(FFMPEG, args, { cwd: work, timeout: spec.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 });
    } catch (error) {
      const e = error as { killed?: boolean; stderr?: unknown };
      const why = e.killed === true ? `killed after ${spec.timeoutMs} ms` : typeof e.stderr === 'string' ? e.stderr.trim() : String(error);
      throw new Error(`generateMedia: ffmpeg failed for ${spec.title} ${rungName(spec.height)}: ${why}\n${FFMPEG} ${args.join(' ')}`, {
        cause: error,
      });
    }
    await checkSegments(work, spec);
    try {
      await rename(work, target);
    } catch (error) {
      // Someone else cached the same rung first; theirs is as good as ours.
      if (!existsSync(join(target, 'index.m3u8'))) throw error;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The MPD says every segment is 1 s and there are `seconds` of them: make ffmpeg's output prove it. */
async function checkSegments(dir: string, spec: EncodeSpec): Promise<void> {
  const playlist = await readFile(join(dir, 'index.m3u8'), 'utf8');
  const durations = [...playlist.matchAll(/^#EXTINF:([0-9.]+),/gm)].map((match) => Number(match[1]));
  const uris = playlist.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  const expectedUris = Array.from({ length: spec.seconds }, (_, i) => `seg-${i + 1}.m4s`);
  const bad =
    !playlist.includes('#EXT-X-VERSION:7') || !playlist.includes('#EXT-X-MAP:URI="init.mp4"') || !playlist.includes('#EXT-X-ENDLIST')
      ? 'missing VERSION 7, MAP or ENDLIST'
      : durations.length !== spec.seconds || durations.some((d) => Math.abs(d - 1) > 0.001)
        ? `segment durations ${durations.join(', ')} are not ${spec.seconds} × 1 s`
        : JSON.stringify(uris) !== JSON.stringify(expectedUris)
          ? `segment names ${uris.join(', ')}`
          : null;
  if (bad !== null)
    throw new Error(`generateMedia: ffmpeg's playlist for ${spec.title} ${rungName(spec.height)} breaks the layout (${bad}):\n${playlist}`);
  for (const file of ['init.mp4', ...expectedUris]) {
    if (!existsSync(join(dir, file))) throw new Error(`generateMedia: ffmpeg wrote no ${file} for ${spec.title} ${rungName(spec.height)}`);
  }
}

async function describeRung(dir: string, height: number, seconds: number): Promise<Omit<GeneratedRung, 'encoded'>> {
  const init = await readFile(join(dir, 'init.mp4'));
  const sizes: number[] = [];
  for (let n = 1; n <= seconds; n++) sizes.push((await stat(join(dir, `seg-${n}.m4s`))).size);
  const total = sizes.reduce((a, b) => a + b, 0);
  return {
    name: rungName(height),
    width: rungWidth(height),
    height,
    codecs: avcCodecString(init),
    // Segments are 1 s, so bytes per segment × 8 is bits per second.
    bandwidth: Math.max(...sizes) * 8,
    averageBandwidth: Math.ceil((total * 8) / seconds),
    segments: seconds,
    timescale: mdhdTimescale(init),
  };
}

function findBox(data: Buffer, type: string): number {
  const at = data.indexOf(Buffer.from(type, 'latin1'));
  if (at < 4) throw new Error(`generateMedia: no ${type} box in the init segment`);
  return at + 4; // first byte of the payload
}

/** avc1.PPCCLL from the avcC record: what CODECS/codecs must say for MSE to accept the stream. */
function avcCodecString(init: Buffer): string {
  const at = findBox(init, 'avcC');
  const hex = (offset: number): string => (init[at + offset] ?? 0).toString(16).padStart(2, '0');
  return `avc1.${hex(1)}${hex(2)}${hex(3)}`;
}

function mdhdTimescale(init: Buffer): number {
  const at = findBox(init, 'mdhd');
  const version = init[at] ?? 0;
  // version/flags (4), then creation and modification times: 4 bytes each in v0, 8 in v1.
  return init.readUInt32BE(at + 4 + (version === 1 ? 16 : 8));
}

function hlsMaster(rungs: readonly GeneratedRung[]): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  // Lowest first: hls.js (and Apple's players) start with the first variant
  // listed, so playback starts fast and climbs, as packagers usually arrange it.
  for (const rung of [...rungs].reverse()) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${rung.bandwidth},AVERAGE-BANDWIDTH=${rung.averageBandwidth},` +
        `RESOLUTION=${rung.width}x${rung.height},CODECS="${rung.codecs}",FRAME-RATE=${FPS.toFixed(3)}`,
      `${rung.name}/index.m3u8`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function dashManifest(rungs: readonly GeneratedRung[], seconds: number): string {
  const timescale = rungs[0]?.timescale ?? 1;
  if (rungs.some((rung) => rung.timescale !== timescale))
    throw new Error('generateMedia: rungs of one title disagree on the mdhd timescale');
  const maxWidth = Math.max(...rungs.map((rung) => rung.width));
  const maxHeight = Math.max(...rungs.map((rung) => rung.height));
  const representations = rungs.map(
    (rung) =>
      `      <Representation id="${rung.name}" codecs="${rung.codecs}" bandwidth="${rung.bandwidth}" ` +
      `width="${rung.width}" height="${rung.height}" sar="1:1"/>`,
  );
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static"',
    `     mediaPresentationDuration="PT${seconds}S" minBufferTime="PT2S">`,
    '  <Period id="0" start="PT0S">',
    `    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="${maxWidth}" maxHeight="${maxHeight}" frameRate="${FPS}" par="16:9">`,
    `      <SegmentTemplate timescale="${timescale}" duration="${timescale}" startNumber="1" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg-$Number$.m4s"/>`,
    ...representations,
    '    </AdaptationSet>',
    '  </Period>',
    '</MPD>',
    '',
  ].join('\n');
}
