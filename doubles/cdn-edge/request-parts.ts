// Small pieces both verifiers and the edge server share: splitting a request URL into its raw
// parts, reading cookies, and the `*`/`?` wildcard match. Everything works on the bytes as the
// viewer sent them (no percent-decoding), because that is what the vendors' edges sign and check.

/** Where an edge looks for the token: the query string, cookies, or both. */
export type Carrier = 'query' | 'cookie' | 'either';

/** One viewer request as an edge sees it. */
export interface ViewerRequest {
  /** `scheme://host[:port]/path?query` or just `/path?query`, exactly as sent (not decoded). */
  readonly url: string;
  /** Cookies of the request, by name; values as sent (quotes around a value already removed). */
  readonly cookies?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** The viewer's address, for IP-bound policies and tokens. IPv4-mapped IPv6 is accepted. */
  readonly clientIp?: string;
}

export interface RawUrlParts {
  /** `scheme://host[:port]`, or '' when the URL was origin-form (`/path?query`). */
  readonly origin: string;
  /** The path exactly as sent. */
  readonly path: string;
  /** The query pairs in order, raw (`name=value` split on the first `=`, nothing decoded). */
  readonly query: readonly { readonly name: string; readonly value: string; readonly raw: string }[];
}

const maxQueryPairs = 1000;

export function splitRawUrl(url: string): RawUrlParts {
  // A viewer never sends a fragment; drop one defensively so it cannot reach a comparison.
  const hash = url.indexOf('#');
  const withoutFragment = hash === -1 ? url : url.slice(0, hash);
  let origin = '';
  let rest = withoutFragment;
  const schemeMatch = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(withoutFragment);
  if (schemeMatch !== null) {
    origin = schemeMatch[0];
    rest = withoutFragment.slice(origin.length);
  }
  const questionMark = rest.indexOf('?');
  const path = questionMark === -1 ? rest : rest.slice(0, questionMark);
  const queryString = questionMark === -1 ? '' : rest.slice(questionMark + 1);
  const query: { name: string; value: string; raw: string }[] = [];
  if (queryString !== '') {
    const pieces = queryString.split('&', maxQueryPairs);
    for (const raw of pieces) {
      if (raw === '') continue;
      const equals = raw.indexOf('=');
      query.push(equals === -1 ? { name: raw, value: '', raw } : { name: raw.slice(0, equals), value: raw.slice(equals + 1), raw });
    }
  }
  return { origin, path: path === '' ? '/' : path, query };
}

/** Rebuilds `origin + path [+ ? + kept pairs]` with the named query parameters removed, bytes unchanged. */
export function withoutQueryParams(url: string, names: ReadonlySet<string>): string {
  const parts = splitRawUrl(url);
  const kept = parts.query.filter((pair) => !names.has(pair.name)).map((pair) => pair.raw);
  return parts.origin + parts.path + (kept.length === 0 ? '' : `?${kept.join('&')}`);
}

/** Values of one query parameter (raw), in order. */
export function queryValues(parts: RawUrlParts, name: string): string[] {
  return parts.query.filter((pair) => pair.name === name).map((pair) => pair.value);
}

export function cookieValue(cookies: ViewerRequest['cookies'], name: string): string | undefined {
  if (cookies === undefined) return undefined;
  if (cookies instanceof Map) return (cookies as ReadonlyMap<string, string>).get(name);
  const record = cookies as Readonly<Record<string, string>>;
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

const maxCookies = 200;

/**
 * Parses a Cookie header (RFC 6265 §5.4 `name=value; name=value`). The first occurrence of a name
 * wins: browsers send the cookie with the longest Path first, which is the one a site set for the
 * content directory. A DQUOTE-wrapped value is unwrapped (RFC 6265 §4.1.1 allows it); nothing is
 * percent-decoded, because neither vendor documents decoding and tokens are checked byte for byte.
 */
export function parseCookieHeader(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (header === undefined || header === '') return cookies;
  for (const piece of header.split(';', maxCookies)) {
    const equals = piece.indexOf('=');
    if (equals === -1) continue;
    const name = piece.slice(0, equals).trim();
    let value = piece.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name !== '' && !cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/**
 * Both vendors' wildcards: `*` matches zero or more characters (including `/`), `?` exactly one.
 * Greedy with one backtrack point, so the loop is bounded by (|pattern|+1)·(|text|+1) steps.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starAt = -1;
  let starText = 0;
  const limit = (pattern.length + 1) * (text.length + 1) + 1;
  for (let step = 0; step < limit; step++) {
    if (t < text.length) {
      const pc = pattern[p];
      if (pc === '*') {
        starAt = p;
        starText = t;
        p++;
      } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
        p++;
        t++;
      } else if (starAt !== -1) {
        p = starAt + 1;
        starText++;
        t = starText;
      } else {
        return false;
      }
      continue;
    }
    // The text is used up: only `*` may remain in the pattern.
    while (p < pattern.length && pattern[p] === '*') p++;
    return p === pattern.length;
  }
  return false;
}

/** `::ffff:192.0.2.1` (how Node reports IPv4 on a dual-stack socket) → `192.0.2.1`. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
}

export function toEpochMs(now: number | Date): number {
  return typeof now === 'number' ? now : now.getTime();
}
