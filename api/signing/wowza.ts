// Wowza Streaming Engine SecureToken v2. The hash binds to the stream path,
// not the file, so one parameter set covers playlist, chunklists and chunks.
// Wowza's own worked example does not reproduce (see the fixtures README);
// tests check this construction against an independent openssl computation.
import { createHash } from 'node:crypto';
import { createKeyring, type KeyEntry } from './keyring.ts';
import { epochSeconds, queryTokenSigner, requireClientIp, validateSignRequest } from './request.ts';
import type { SignRequest, TokenPairs, UrlSigner } from './signer.ts';

export type WowzaHashAlgorithm = 'SHA256' | 'SHA384' | 'SHA512';

export interface WowzaTokenInput {
  /** `<app>/<instance>/<stream>` without leading slash or file name, exactly as sent. */
  contentPath: string;
  secret: string;
  /** Defaults to `wowzatoken`. */
  prefix?: string;
  /** Epoch seconds. */
  startTime?: number;
  /** Epoch seconds. */
  endTime?: number;
  /** Extra hashed parameters, names without the prefix. */
  customParams?: Readonly<Record<string, string>>;
  clientIp?: string;
  hashAlgorithm?: WowzaHashAlgorithm;
}

export const DEFAULT_WOWZA_PREFIX = 'wowzatoken';
const NAME = /^[A-Za-z0-9_]+$/;
const QUERY_VALUE = /^(?:[A-Za-z0-9\-._~!$'()*+,;:@/]|%[0-9A-Fa-f]{2})*$/;

interface PublicParam {
  name: string;
  value: string;
}

function publicParams(input: WowzaTokenInput): PublicParam[] {
  const prefix = input.prefix ?? DEFAULT_WOWZA_PREFIX;
  if (!NAME.test(prefix)) throw new Error('prefix must be [A-Za-z0-9_]+');
  const params: PublicParam[] = [];
  if (input.startTime !== undefined) params.push({ name: `${prefix}starttime`, value: String(input.startTime) });
  if (input.endTime !== undefined) params.push({ name: `${prefix}endtime`, value: String(input.endTime) });
  if (input.startTime !== undefined && input.endTime !== undefined && input.endTime <= input.startTime) {
    throw new Error('endTime must be after startTime');
  }
  for (const [name, value] of Object.entries(input.customParams ?? {})) {
    if (!NAME.test(name) || ['starttime', 'endtime', 'hash'].includes(name)) {
      throw new Error(`custom parameter name ${JSON.stringify(name)} must be [A-Za-z0-9_]+ and not starttime/endtime/hash`);
    }
    if (!QUERY_VALUE.test(value)) throw new Error(`custom parameter ${name} must be query-safe and percent-encoded`);
    params.push({ name: `${prefix}${name}`, value });
  }
  return params;
}

/**
 * `<contentPath>?` + the `&`-joined list of `name=value` params, the bare
 * secret and the bare client IP, sorted by name (code-unit order, so
 * uppercase before lowercase) — the secret and IP land wherever they sort.
 */
export function wowzaStringToHash(input: WowzaTokenInput): string {
  if (input.contentPath.startsWith('/') || input.contentPath === '') {
    throw new Error('contentPath must be non-empty and have no leading slash');
  }
  if (input.secret === '') throw new Error('secret must not be empty');
  const items: Array<{ key: string; text: string }> = publicParams(input).map(({ name, value }) => ({
    key: name,
    text: `${name}=${value}`,
  }));
  items.push({ key: input.secret, text: input.secret });
  if (input.clientIp !== undefined) items.push({ key: input.clientIp, text: input.clientIp });
  items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return `${input.contentPath}?${items.map((item) => item.text).join('&')}`;
}

/** Standard base64 with `+/`→`-_`; unlike base64url the `=` padding stays. */
export function wowzaBase64(digest: Buffer): string {
  return digest.toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

export function wowzaHash(input: WowzaTokenInput): string {
  const algorithm = (input.hashAlgorithm ?? 'SHA256').toLowerCase();
  return wowzaBase64(createHash(algorithm).update(wowzaStringToHash(input), 'utf8').digest());
}

/** The query parameters to send: public params (no secret, no IP) plus `<prefix>hash`. */
export function wowzaTokenParams(input: WowzaTokenInput): Array<[string, string]> {
  const prefix = input.prefix ?? DEFAULT_WOWZA_PREFIX;
  const hash = wowzaHash(input);
  return [...publicParams(input).map(({ name, value }): [string, string] => [name, value]), [`${prefix}hash`, hash]];
}

export interface WowzaSignerOptions {
  prefix: string;
  hashAlgorithm: WowzaHashAlgorithm;
  /** Hash the viewer IP too (Wowza's "include client IP"); users report 403s across ISPs/NAT. */
  bindClientIp: boolean;
  /** `material` is the SecureToken shared secret of the application. */
  keys: ReadonlyArray<KeyEntry<string>>;
}

/**
 * scopePath is the stream path (`/<app>/<instance>/<stream>/`) and manifestPath
 * a file directly inside it, e.g. `.../playlist.m3u8`; the file name is not hashed.
 */
export function createWowzaSigner(options: WowzaSignerOptions): UrlSigner {
  if (!NAME.test(options.prefix)) throw new Error('prefix must be [A-Za-z0-9_]+');
  const keyring = createKeyring(options.keys);
  for (const key of keyring.keys) {
    if (key.material === '') throw new Error(`key ${JSON.stringify(key.id)} has an empty secret`);
  }
  const { active } = keyring;
  const queryToken = (request: SignRequest): TokenPairs => {
    validateSignRequest(request);
    if (request.manifestPath.slice(request.scopePath.length).includes('/')) {
      throw new Error('wowza manifestPath must be a file directly inside scopePath (the stream path)');
    }
    return wowzaTokenParams({
      contentPath: request.scopePath.slice(1, -1),
      secret: active.material,
      prefix: options.prefix,
      startTime: epochSeconds(request.notBefore),
      endTime: epochSeconds(request.expiresAt),
      hashAlgorithm: options.hashAlgorithm,
      ...(options.bindClientIp && { clientIp: requireClientIp(request, 'wowza') }),
    });
  };
  // Wowza Streaming Engine carries the session into the chunklist and chunk URLs it writes itself,
  // so the token on the playlist URL is all a player needs.
  return queryTokenSigner('wowza', keyring.activeInfo, queryToken);
}
