// An Akamai Auth Token 2.0 ("EdgeAuth") verifier, written from Akamai's documentation and its
// token generators, NOT from st-api's signer (importing api/ would make the check circular).
//
// Sources (read for this file):
// - The edge behaviour "Auth Token 2.0 Verification" (verifyTokenAuthorization): token location
//   COOKIE / QUERY_STRING / CLIENT_REQUEST_HEADER, default name `__token__`, algorithm SHA256 / SHA1
//   / MD5, key and transitionKey as hex, salt, escapeHmacInputs, ignoreQueryString:
//   https://techdocs.akamai.com/property-mgr/reference/latest-verify-token-authorization
//   https://techdocs.akamai.com/property-mgr/docs/auth-token-2-0-ver
// - The token layout and HMAC input, from Akamai's generator (github.com/akamai/EdgeAuth-Token-Node
//   lib/edgeAuth.js and README.md; the npm package akamai-edgeauth): fields
//   `[ip=…~][st=…~]exp=…[~acl=…][~id=…][~data=…]`, then `~hmac=<lowercase hex>` computed with the
//   hex-DECODED key over those fields joined by `~` (plus `~url=<path>` for URL tokens and
//   `~salt=…`, neither of which is sent); several ACLs joined by `!`; ACL wildcards `*` and `?`.
//
// Decisions where the documents are silent (see README.md):
// - The token is checked byte for byte as received: no %-decoding of the query value or cookie.
//   Akamai's own session tokens carry escapes inside a valid token (`acl=%2f*%2f717684*`, seen in
//   video-dev/hls.js#3786), so decoding before the HMAC would break them; and clients that
//   re-encode tokens are a known cause of 403s (lostisland/faraday#1598). Only the ACL, once the
//   HMAC has passed, is %-decoded for matching (that is how `%2f*` can match a path).
// - The ACL is matched against the request PATH only, never the query string.
// - Valid while st ≤ now < exp (to the millisecond, with exp and st in seconds).
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  cookieValue,
  normaliseIp,
  queryValues,
  splitRawUrl,
  toEpochMs,
  wildcardMatch,
  type Carrier,
  type ViewerRequest,
} from './request-parts.ts';

export type AkamaiAlgorithm = 'sha256' | 'sha1' | 'md5';

export interface AkamaiVerifierOptions {
  /** Hex keys, even length: the token key first, then transition keys (rotation with no downtime). */
  readonly keys: readonly string[];
  /** Default sha256, as in the generators and the behaviour. */
  readonly algorithm?: AkamaiAlgorithm;
  /** Query parameter and cookie name. Default `__token__`. */
  readonly tokenName?: string;
  /** Default 'either' (query first). The real behaviour is configured for one location. */
  readonly carrier?: Carrier;
  /** The behaviour's optional salt: hashed, never sent. */
  readonly salt?: string;
}

export type AkamaiDenyCode = 'missing-token' | 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'acl-mismatch' | 'ip-mismatch';

export type AkamaiVerdict =
  | { readonly allowed: true; readonly carrier: 'query' | 'cookie'; readonly keyIndex: number; readonly acl: readonly string[] | undefined }
  | { readonly allowed: false; readonly code: AkamaiDenyCode; readonly reason: string };

export type AkamaiVerifier = (request: ViewerRequest, now: number | Date) => AkamaiVerdict;

const digestBytes: Record<AkamaiAlgorithm, number> = { sha256: 32, sha1: 20, md5: 16 };
const knownFields = new Set(['ip', 'st', 'exp', 'acl', 'id', 'data']);
const maxFields = 16;

function deny(code: AkamaiDenyCode, reason: string): AkamaiVerdict {
  return { allowed: false, code, reason };
}

/** Decodes a hex key strictly. (Node's Buffer.from(x, 'hex') silently stops at the first non-hex char.) */
export function decodeHexKey(hex: string): Buffer {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new Error('akamai edge: a key must be a non-empty, even-length hex string');
  }
  return Buffer.from(hex, 'hex');
}

export function createAkamaiVerifier(options: AkamaiVerifierOptions): AkamaiVerifier {
  if (options.keys.length === 0) throw new Error('akamai edge: no keys');
  const keys = options.keys.map(decodeHexKey);
  const algorithm = options.algorithm ?? 'sha256';
  const tokenName = options.tokenName ?? '__token__';
  const carrier = options.carrier ?? 'either';
  return (request, now) => {
    const url = splitRawUrl(request.url);
    let token: string | undefined;
    let foundIn: 'query' | 'cookie' = 'query';
    if (carrier !== 'cookie') {
      const values = queryValues(url, tokenName);
      if (values.length > 1) return deny('malformed', `${tokenName} appears ${values.length} times in the query`);
      token = values[0];
    }
    if (token === undefined && carrier !== 'query') {
      token = cookieValue(request.cookies, tokenName);
      foundIn = 'cookie';
    }
    if (token === undefined || token === '') {
      const where = carrier === 'query' ? 'query parameter' : carrier === 'cookie' ? 'cookie' : 'query parameter or cookie';
      return deny('missing-token', `no ${tokenName} ${where}`);
    }
    const verdict = verifyAkamaiToken(token, url.path, {
      keys,
      algorithm,
      salt: options.salt,
      clientIp: request.clientIp,
      nowMs: toEpochMs(now),
    });
    return verdict.allowed ? { ...verdict, carrier: foundIn } : verdict;
  };
}

export interface AkamaiTokenCheck {
  readonly keys: readonly Buffer[];
  readonly algorithm: AkamaiAlgorithm;
  readonly salt: string | undefined;
  readonly clientIp: string | undefined;
  readonly nowMs: number;
}

/** Checks one token for one request path. */
export function verifyAkamaiToken(token: string, path: string, check: AkamaiTokenCheck): AkamaiVerdict {
  const pieces = token.split('~', maxFields + 1);
  if (pieces.length > maxFields) return deny('malformed', 'too many token fields');
  const last = pieces.at(-1) ?? '';
  if (!last.startsWith('hmac=')) return deny('malformed', 'the token does not end with ~hmac=<hex>');
  const signedPieces = pieces.slice(0, -1);
  const fields = new Map<string, string>();
  for (const piece of signedPieces) {
    const equals = piece.indexOf('=');
    if (equals <= 0) return deny('malformed', `token field ${JSON.stringify(piece)} is not name=value`);
    const name = piece.slice(0, equals);
    if (!knownFields.has(name)) return deny('malformed', `unknown token field ${name}`);
    if (fields.has(name)) return deny('malformed', `token field ${name} appears twice`);
    fields.set(name, piece.slice(equals + 1));
  }
  const exp = fields.get('exp');
  if (exp === undefined || !/^[0-9]{1,12}$/.test(exp)) return deny('malformed', 'exp is missing or not epoch seconds');
  const st = fields.get('st');
  if (st !== undefined && !/^[0-9]{1,12}$/.test(st)) return deny('malformed', 'st is not epoch seconds');

  const givenHex = last.slice('hmac='.length);
  const expectedLength = digestBytes[check.algorithm];
  if (!/^[0-9a-fA-F]+$/.test(givenHex) || givenHex.length !== expectedLength * 2) {
    return deny('malformed', `hmac is not ${expectedLength * 2} hex digits (${check.algorithm})`);
  }
  const given = Buffer.from(givenHex, 'hex');

  // The generators hash the emitted fields, then `url=` for a URL token (no acl), then `salt=`.
  const acl = fields.get('acl');
  const hashed = [...signedPieces];
  if (acl === undefined) hashed.push(`url=${path}`);
  if (check.salt !== undefined) hashed.push(`salt=${check.salt}`);
  const input = hashed.join('~');
  let keyIndex = -1;
  for (const [index, key] of check.keys.entries()) {
    const expected = createHmac(check.algorithm, key).update(input, 'utf8').digest();
    if (timingSafeEqual(expected, given) && keyIndex === -1) keyIndex = index;
  }
  if (keyIndex === -1) return deny('bad-signature', `hmac does not match any of the ${check.keys.length} key(s) (${check.algorithm})`);

  if (!(check.nowMs < Number(exp) * 1000)) {
    return deny(
      'expired',
      `expired: exp ${exp} (${new Date(Number(exp) * 1000).toISOString()}) is not after now (${new Date(check.nowMs).toISOString()})`,
    );
  }
  if (st !== undefined && check.nowMs < Number(st) * 1000) {
    return deny(
      'not-yet-valid',
      `not yet valid: st ${st} (${new Date(Number(st) * 1000).toISOString()}) is after now (${new Date(check.nowMs).toISOString()})`,
    );
  }
  const ip = fields.get('ip');
  if (ip !== undefined && (check.clientIp === undefined || normaliseIp(check.clientIp) !== ip)) {
    return deny('ip-mismatch', `client ${check.clientIp ?? '(unknown)'} is not the token's ip ${ip}`);
  }
  if (acl === undefined) return { allowed: true, carrier: 'query', keyIndex, acl: undefined };
  const entries = acl.split('!', maxFields * 4);
  const decodedPath = percentDecodeOrRaw(path);
  const matched = entries.some((entry) => wildcardMatch(percentDecodeOrRaw(entry), decodedPath));
  if (!matched) return deny('acl-mismatch', `path ${path} is not matched by acl ${acl}`);
  return { allowed: true, carrier: 'query', keyIndex, acl: entries };
}

function percentDecodeOrRaw(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
