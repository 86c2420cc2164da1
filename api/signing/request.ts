// Checks and helpers every scheme shares. Signers never re-encode paths: what
// they sign must be exactly what goes on the wire, so anything that is not
// already a valid percent-encoded path is rejected instead of "fixed".
import type { SignRequest, SigningKeyInfo, TokenPairs, UrlSigner } from './signer.ts';

// RFC 3986 path characters minus `*`: a literal `*` would act as a wildcard in
// CloudFront and Akamai resources and widen the grant. Callers send it as %2A.
const ENCODED_PATH = /^(?:[A-Za-z0-9\-._~!$&'()+,;=:@/]|%[0-9A-Fa-f]{2})*$/;
const ORIGIN = /^https?:\/\/[A-Za-z0-9.\-:[\]]+$/;

export function validateSignRequest(request: SignRequest): void {
  const { origin, manifestPath, scopePath, notBefore, expiresAt } = request;
  if (!ORIGIN.test(origin)) {
    throw new Error(`origin must be scheme://host[:port] without path or trailing slash, got ${JSON.stringify(origin)}`);
  }
  if (!scopePath.startsWith('/') || !scopePath.endsWith('/') || !ENCODED_PATH.test(scopePath)) {
    throw new Error(
      `scopePath must be a percent-encoded directory starting and ending with "/" (no "*"), got ${JSON.stringify(scopePath)}`,
    );
  }
  if (!ENCODED_PATH.test(manifestPath)) {
    throw new Error(`manifestPath must be percent-encoded (no "?", "#", "*", spaces), got ${JSON.stringify(manifestPath)}`);
  }
  // A token scoped to one directory is useless for a manifest outside it.
  if (!manifestPath.startsWith(scopePath) || manifestPath.length === scopePath.length) {
    throw new Error(`manifestPath ${JSON.stringify(manifestPath)} is not a file below scopePath ${JSON.stringify(scopePath)}`);
  }
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(expiresAt.getTime())) {
    throw new Error('notBefore and expiresAt must be valid dates');
  }
  if (epochSeconds(notBefore) >= epochSeconds(expiresAt)) {
    throw new Error('notBefore must be at least one second before expiresAt');
  }
}

/** Whole seconds, rounded down: an earlier start and an earlier end are both the safe side. */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/**
 * Appends already-encoded `name=value` pairs without touching the existing URL,
 * so the bytes that were signed stay the bytes that are sent.
 */
export function appendQuery(url: string, params: ReadonlyArray<readonly [string, string]>): string {
  const query = params.map(([name, value]) => `${name}=${value}`).join('&');
  if (query === '') return url;
  const separator = !url.includes('?') ? '?' : url.endsWith('?') || url.endsWith('&') ? '' : '&';
  return url + separator + query;
}

export function requireClientIp(request: SignRequest, scheme: string): string {
  if (request.clientIp === undefined || request.clientIp === '') {
    throw new Error(`${scheme} signer is configured to bind the client IP, but the request has no clientIp`);
  }
  return request.clientIp;
}

/** What every signer has: its scheme, its active key, its query token, and `sign`, the manifest URL carrying that token. */
export function queryTokenSigner(scheme: string, activeKey: SigningKeyInfo, queryToken: (request: SignRequest) => TokenPairs): UrlSigner {
  return { scheme, activeKey, queryToken, sign: (request) => appendQuery(request.origin + request.manifestPath, queryToken(request)) };
}
