// Verifies the client JWT issued by the platform's auth service. Each configured key pins its own
// algorithm, so a token can never choose how it is checked (alg=none, or HS256 keyed with an RSA public key).
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { TtlMap } from '../../common/ttl-map.ts';
import { AppError } from '../errors.ts';

export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'HS256', 'HS512'] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

export interface TokenKey {
  /** Matched against the token's `kid` header when the token has one. */
  kid?: string | undefined;
  algorithm: TokenAlgorithm;
  key: KeyObject;
}

export interface TokenPolicy {
  issuer: string;
  audience: string;
  leewaySeconds: number;
  maxTokenBytes: number;
  keys: readonly TokenKey[];
}

export interface Viewer {
  userId: string;
}

export const USER_ID_PATTERN = /^[A-Za-z0-9._:@|-]{1,128}$/;
// The scheme is case-insensitive (RFC 9110 §11.1); clients that pad it with a few spaces or a tab
// still mean a bearer token.
const BEARER = /^bearer[ \t]{1,16}([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)[ \t]*$/i;
/** The scheme, its padding, and some trailing blanks: what may come around the token itself. */
const SCHEME_ALLOWANCE = 32;

/**
 * Client apps send the same token on every play of a session, and an RS256 verify is the largest
 * single cost of a warm play. A verified token is remembered for at most this long (and never past
 * its own `exp`); a key removed from the configuration stops being honoured within this window.
 */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX_ENTRIES = 50_000;

export function createTokenVerifier(policy: TokenPolicy, now: () => number = Date.now): (authorization: string | undefined) => Viewer {
  const verified = new TtlMap<string, Viewer>({ maxEntries: VERIFIED_MAX_ENTRIES, now });
  return (authorization) => {
    if (authorization === undefined || authorization === '') throw new AppError('TOKEN_MISSING');
    const remembered = verified.get(authorization);
    if (remembered !== undefined) return remembered;
    const verifiedAt = now();
    const { viewer, expiresAtMs } = verifyUncached(policy, authorization, verifiedAt);
    verified.set(authorization, viewer, Math.min(expiresAtMs + policy.leewaySeconds * 1000 - verifiedAt, VERIFIED_TTL_MS));
    return viewer;
  };
}

function verifyUncached(policy: TokenPolicy, authorization: string, nowMs: number): { viewer: Viewer; expiresAtMs: number } {
  const oversized = () => new AppError('TOKEN_MALFORMED', { detail: `The token exceeds ${policy.maxTokenBytes} bytes` });
  if (authorization.length > policy.maxTokenBytes + SCHEME_ALLOWANCE) throw oversized();
  const token = BEARER.exec(authorization)?.[1];
  if (token === undefined) throw new AppError('TOKEN_MALFORMED', { detail: 'Expected "Authorization: Bearer <JWT>"' });
  if (token.length > policy.maxTokenBytes) throw oversized();

  const header = decodeHeader(token);
  const candidates = policy.keys.filter(
    (key) => key.algorithm === header.alg && (header.kid === undefined || key.kid === undefined || key.kid === header.kid),
  );
  if (candidates.length === 0) {
    // The alg is the caller's text: echoed only when it looks like an algorithm name.
    const alg =
      typeof header.alg === 'string' && /^[A-Za-z0-9]{1,16}$/.test(header.alg) ? `alg ${JSON.stringify(header.alg)}` : "the token's alg";
    throw new AppError('TOKEN_ALGORITHM_REJECTED', { detail: `No accepted key for ${alg}` });
  }

  let lastError: AppError | undefined;
  for (const candidate of candidates) {
    try {
      const payload = jwt.verify(token, candidate.key, {
        algorithms: [candidate.algorithm],
        issuer: policy.issuer,
        audience: policy.audience,
        clockTolerance: policy.leewaySeconds,
        clockTimestamp: Math.floor(nowMs / 1000),
      });
      return viewerFrom(payload);
    } catch (error) {
      lastError = toTokenError(error);
      // Only a signature mismatch means another key (rotation) might still match.
      if (lastError.code !== 'TOKEN_SIGNATURE_INVALID') throw lastError;
    }
  }
  throw lastError ?? new AppError('TOKEN_SIGNATURE_INVALID');
}

function decodeHeader(token: string): { alg: unknown; kid: string | undefined } {
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    decoded = null;
  }
  if (decoded === null || typeof decoded.header !== 'object') throw new AppError('TOKEN_MALFORMED');
  // RFC 7515 §4.1.11: a recipient must reject a token whose `crit` names extensions it does not
  // understand; st-api understands none (and an empty `crit` is itself invalid).
  if ('crit' in decoded.header)
    throw new AppError('TOKEN_MALFORMED', { detail: 'The token header lists critical extensions (crit) that st-api does not support' });
  const kid = decoded.header.kid;
  return { alg: decoded.header.alg, kid: typeof kid === 'string' ? kid : undefined };
}

function viewerFrom(payload: string | jwt.JwtPayload): { viewer: Viewer; expiresAtMs: number } {
  if (typeof payload === 'string') throw new AppError('TOKEN_MALFORMED', { detail: 'The token payload is not a JSON object' });
  if (typeof payload.exp !== 'number') throw new AppError('TOKEN_CLAIMS_INVALID', { detail: 'The token has no exp claim' });
  if (typeof payload.sub !== 'string' || !USER_ID_PATTERN.test(payload.sub)) {
    throw new AppError('TOKEN_CLAIMS_INVALID', { detail: 'The token subject is missing or not a user id' });
  }
  return { viewer: { userId: payload.sub }, expiresAtMs: payload.exp * 1000 };
}

function toTokenError(error: unknown): AppError {
  if (error instanceof jwt.TokenExpiredError) return new AppError('TOKEN_EXPIRED');
  if (error instanceof jwt.NotBeforeError) return new AppError('TOKEN_NOT_YET_VALID');
  if (error instanceof AppError) return error;
  if (error instanceof jwt.JsonWebTokenError) {
    if (error.message === 'invalid signature') return new AppError('TOKEN_SIGNATURE_INVALID');
    if (error.message.startsWith('jwt issuer invalid') || error.message.startsWith('jwt audience invalid')) {
      return new AppError('TOKEN_CLAIMS_INVALID', { detail: error.message.replace(/\. expected: .*$/, '') });
    }
    if (error.message.startsWith('invalid algorithm') || error.message.includes('must be')) {
      return new AppError('TOKEN_ALGORITHM_REJECTED');
    }
  }
  return new AppError('TOKEN_MALFORMED');
}

/** HMAC algorithms take the shared secret; the others a public key (a private key is reduced to its public half). */
export function tokenKey(algorithm: TokenAlgorithm, material: string): KeyObject {
  if (algorithm.startsWith('HS')) return createSecretKey(Buffer.from(material, 'utf8'));
  return material.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(material)) : createPublicKey(material);
}
