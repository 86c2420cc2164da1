// Tokenized manifests (the model of Mux and of Kaltura's nginx-secure-token-module): st-api serves
// the playlists and the MPD, and every media URI in them points at the CDN with the CDN's query
// token, so an edge that only reads a query token still sees it on every segment.
//
// A manifest is compiled once per origin fetch into text pieces with a slot after each media URI;
// rendering only joins the pieces around a token, and each rendering is kept (render-cache.ts), so
// the viewers of one issue slot share it.

export type ManifestKind = 'hls' | 'dash';

export const CONTENT_TYPES: Record<ManifestKind, string> = {
  hls: 'application/vnd.apple.mpegurl',
  dash: 'application/dash+xml',
};

export function manifestKindOf(path: string): ManifestKind | undefined {
  if (path.endsWith('.m3u8')) return 'hls';
  if (path.endsWith('.mpd')) return 'dash';
  return undefined;
}

let nextId = 0;

export class CompiledManifest {
  readonly kind: ManifestKind;
  readonly #pieces: readonly string[];
  /** `?` or `&` (`&amp;` in XML) ahead of each slot: the media URI may already have a query. */
  readonly #joins: readonly string[];
  /** How many media URIs carry the token (for tests and metrics). */
  readonly slots: number;
  /** Distinguishes a refetched manifest from the copy it replaces (renderings are cached by it). */
  readonly id: number;

  constructor(kind: ManifestKind, pieces: string[], joins: string[]) {
    this.kind = kind;
    this.#pieces = pieces;
    this.#joins = joins;
    this.slots = joins.length;
    this.id = nextId += 1;
  }

  /** The manifest with `query` (`name=value&…`, already URL-encoded) on every media URI. */
  render(query: string): string {
    const token = this.kind === 'dash' ? query.replaceAll('&', '&amp;') : query;
    let out = this.#pieces[0] ?? '';
    for (let i = 0; i < this.#joins.length; i += 1) out += (this.#joins[i] ?? '') + token + (this.#pieces[i + 1] ?? '');
    return out;
  }
}

export class ManifestFormatError extends Error {
  override name = 'ManifestFormatError';
}

interface Place {
  /** Origin path of this manifest, e.g. `/vod/t/hls/480p/480p/index.m3u8`: relative URIs resolve against it. */
  documentPath: string;
  /** Where media is fetched from: the CDN's `scheme://host[:port]`. */
  cdnOrigin: string;
}

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** A relative URI resolved against the manifest, as an absolute CDN URL; absolute URIs are another host's and stay. */
function onCdn(uri: string, place: Place): string | undefined {
  if (ABSOLUTE.test(uri) || uri.startsWith('//')) return undefined;
  const resolved = new URL(uri, `http://origin${place.documentPath}`);
  return `${place.cdnOrigin}${resolved.pathname}${resolved.search}`;
}

class Builder {
  readonly pieces: string[] = [''];
  readonly joins: string[] = [];

  text(text: string): void {
    this.pieces[this.pieces.length - 1] += text;
  }

  /** Text, then the token slot. */
  slot(text: string, join: string): void {
    this.text(text);
    this.joins.push(join);
    this.pieces.push('');
  }
}

// Tags whose URI attribute names media the player fetches from the CDN; variant and rendition
// playlists (EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, a line after EXT-X-STREAM-INF) stay relative,
// so they come back to st-api under the same path token.
const MEDIA_URI_TAGS = ['#EXT-X-MAP:', '#EXT-X-KEY:', '#EXT-X-PART:', '#EXT-X-PRELOAD-HINT:', '#EXT-X-SESSION-KEY:'];

export function compileHls(text: string, place: Place): CompiledManifest {
  if (!text.startsWith('#EXTM3U')) throw new ManifestFormatError('not an HLS playlist (no #EXTM3U)');
  const out = new Builder();
  const lines = text.split('\n');
  let nextIsPlaylist = false;
  lines.forEach((raw, index) => {
    const newline = index < lines.length - 1 ? '\n' : '';
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const eol = raw.slice(line.length) + newline;
    if (line.startsWith('#')) {
      if (line.startsWith('#EXT-X-STREAM-INF:')) nextIsPlaylist = true;
      if (MEDIA_URI_TAGS.some((tag) => line.startsWith(tag))) {
        const match = /URI="([^"]*)"/.exec(line);
        const target = match?.[1] === undefined ? undefined : onCdn(match[1], place);
        if (match !== null && target !== undefined) {
          out.slot(`${line.slice(0, match.index)}URI="${target}`, target.includes('?') ? '&' : '?');
          out.text(`"${line.slice(match.index + match[0].length)}${eol}`);
          return;
        }
      }
      out.text(line + eol);
      return;
    }
    const uri = line.trim();
    const target = uri === '' || nextIsPlaylist ? undefined : onCdn(uri, place);
    if (uri !== '') nextIsPlaylist = false;
    if (target === undefined) out.text(line + eol);
    else {
      out.slot(target, target.includes('?') ? '&' : '?');
      out.text(eol);
    }
  });
  return new CompiledManifest('hls', out.pieces, out.joins);
}

// Attributes that name media in an MPD: SegmentTemplate@media/@initialization/@index,
// SegmentURL@media/@index, Initialization@sourceURL, RepresentationIndex@sourceURL.
const MEDIA_ATTRIBUTE = /(\s(?:media|initialization|index|sourceURL)=)("([^"]*)"|'([^']*)')/g;

/**
 * The MPD moves from the CDN to st-api, so its base URL is pinned to the CDN directory it came
 * from (an MPD-level BaseURL, which every nested relative BaseURL resolves against), and the CDN's
 * query token goes on every media attribute. SegmentBase MPDs (byte ranges of one file named by a
 * BaseURL) are not tokenized: the packager here writes SegmentTemplate.
 */
export function compileDash(text: string, place: Place): CompiledManifest {
  const periodAt = text.indexOf('<Period');
  if (!/<MPD[\s>]/.test(text) || periodAt === -1) throw new ManifestFormatError('not a DASH MPD (no <MPD> with a <Period>)');
  const directory = place.documentPath.slice(0, place.documentPath.lastIndexOf('/') + 1);
  const cdnDirectory = `${place.cdnOrigin}${directory}`;
  let head = text.slice(0, periodAt);
  const mpdBase = /<BaseURL>([^<]*)<\/BaseURL>/.exec(head);
  if (mpdBase === null) {
    head += `<BaseURL>${cdnDirectory}</BaseURL>\n  `;
  } else {
    const resolved = onCdn(mpdBase[1] ?? '', place) ?? mpdBase[1] ?? '';
    head = head.replace(mpdBase[0], `<BaseURL>${resolved}</BaseURL>`);
  }
  const body = head + text.slice(periodAt);
  const out = new Builder();
  let last = 0;
  for (const match of body.matchAll(MEDIA_ATTRIBUTE)) {
    const quote = match[2]?.[0] ?? '"';
    const value = match[3] ?? match[4] ?? '';
    if (ABSOLUTE.test(value) && !value.startsWith(place.cdnOrigin)) continue;
    out.slot(body.slice(last, match.index) + match[1] + quote + value, value.includes('?') ? '&amp;' : '?');
    last = match.index + match[0].length - 1;
  }
  out.text(body.slice(last));
  return new CompiledManifest('dash', out.pieces, out.joins);
}
