// Akamai EdgeAuth / Auth Token 2.0, laid out as akamai/EdgeAuth-Token-Node
// does it. There are no published fixed vectors; tests rebuild tokens with
// openssl instead.
import { createHmac } from 'node:crypto';
import { createKeyring, type KeyEntry } from './keyring.ts';
import { epochSeconds, queryTokenSigner, requireClientIp, validateSignRequest } from './request.ts';
import type { SignRequest, TokenPairs, UrlSigner } from './signer.ts';

export type EdgeAuthAlgorithm = 'sha256' | 'sha1' | 'md5';

export interface EdgeAuthTokenInput {
  /** Hex string; decoded to bytes before use, as the edge does. */
  key: string;
  algorithm?: EdgeAuthAlgorithm;
  /** Epoch seconds (`st`). */
  startTime?: number;
  /** Epoch seconds (`exp`). */
  endTime: number;
  /** ACL token: path pattern(s) with `*`/`?`; several are joined with `!`. */
  acl?: string | readonly string[];
  /** URL token: the path is hashed but not put into the token. */
  url?: string;
  ip?: string;
  sessionId?: string;
  data?: string;
  /** Hashed, never emitted. */
  salt?: string;
}

export const HEX_KEY = /^(?:[0-9a-fA-F]{2})+$/;

// The token travels raw in a query string (no escape_early: Node and Python
// escape differently, and the ACL is never escaped anyway). So every field
// must already be query-safe and free of `~`, the field delimiter.
const FIELD = /^(?:[A-Za-z0-9\-._!$'()*+,;=:@/?]|%[0-9A-Fa-f]{2})+$/;

function assertField(value: string, name: string): void {
  if (!FIELD.test(value)) {
    throw new Error(`${name} must be non-empty, query-safe and percent-encoded, without "~", "&", "#" or spaces`);
  }
}

/** `<key>=<value>` once `value` is checked, or nothing when it is absent. */
function checkedField(key: string, value: string | undefined, name: string): string[] {
  if (value === undefined) return [];
  assertField(value, name);
  return [`${key}=${value}`];
}

function assertEpoch(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer of epoch seconds`);
  }
}

function aclValue(acl: string | readonly string[]): string {
  const entries = typeof acl === 'string' ? [acl] : acl;
  if (entries.length === 0) throw new Error('acl must have at least one entry');
  for (const entry of entries) {
    assertField(entry, 'acl');
    // A `!` inside one entry would silently split it into two ACLs, e.g. `/a!/*` grants `/*`.
    if (entry.includes('!')) throw new Error('an acl entry must not contain "!" (the ACL delimiter); pass several ACLs as an array');
  }
  return entries.join('!');
}

export function edgeAuthToken(input: EdgeAuthTokenInput): string {
  if (!HEX_KEY.test(input.key)) {
    throw new Error('EdgeAuth key must be a non-empty, even-length hex string');
  }
  return tokenWithKey(Buffer.from(input.key, 'hex'), input);
}

/** The token for a key already decoded: the signer decodes its configured keys once. */
function tokenWithKey(key: Buffer, input: Omit<EdgeAuthTokenInput, 'key'>): string {
  if ((input.acl === undefined) === (input.url === undefined)) {
    throw new Error('EdgeAuth token needs exactly one of acl or url');
  }
  assertEpoch(input.endTime, 'endTime (exp)');
  if (input.startTime !== undefined) {
    assertEpoch(input.startTime, 'startTime (st)');
    // Python's rule (Node only rejects end < start): a zero-length window is useless.
    if (input.endTime <= input.startTime) throw new Error('endTime (exp) must be after startTime (st)');
  }

  const fields = [
    ...checkedField('ip', input.ip, 'ip'),
    ...(input.startTime === undefined ? [] : [`st=${input.startTime}`]),
    `exp=${input.endTime}`,
    ...(input.acl === undefined ? [] : [`acl=${aclValue(input.acl)}`]),
    ...checkedField('id', input.sessionId, 'sessionId'),
    ...checkedField('data', input.data, 'data'),
  ];
  const hashed = [...fields, ...checkedField('url', input.url, 'url'), ...checkedField('salt', input.salt, 'salt')];

  const hmac = createHmac(input.algorithm ?? 'sha256', key)
    .update(hashed.join('~'))
    .digest('hex');
  return [...fields, `hmac=${hmac}`].join('~');
}

export interface AkamaiSignerOptions {
  /** Query parameter carrying the token; `__token__` by default, `hdnts` for Segmented Media Protection. */
  tokenName: string;
  algorithm: EdgeAuthAlgorithm;
  /** Put `ip=` into the token. Akamai itself warns this breaks roaming/NAT viewers. */
  bindClientIp: boolean;
  /** `material` is the hex key; the edge's token key and transition key hold the two rotation keys. */
  keys: ReadonlyArray<KeyEntry<string>>;
}

/** Trusts its options: the configuration schema (config.ts) has checked the token name and the hex keys. */
export function createAkamaiSigner(options: AkamaiSignerOptions): UrlSigner {
  const keyring = createKeyring(options.keys);
  const activeKey = Buffer.from(keyring.active.material, 'hex');
  const token = (request: SignRequest): TokenPairs => {
    validateSignRequest(request);
    const value = tokenWithKey(activeKey, {
      algorithm: options.algorithm,
      startTime: epochSeconds(request.notBefore),
      endTime: epochSeconds(request.expiresAt),
      acl: `${request.scopePath}*`,
      ...(options.bindClientIp && { ip: requireClientIp(request, 'akamai') }),
    });
    return [[options.tokenName, value]];
  };
  return {
    ...queryTokenSigner('akamai', keyring.activeInfo, token),
    // The edge's token-verification behaviour reads the same name from a cookie (location COOKIE);
    // every field is already cookie-safe (no space, quote, comma, semicolon or backslash).
    cookieToken: token,
  };
}
