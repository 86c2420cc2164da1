// Where the token travels, so that it reaches every request a player makes, not only the first.
// Players resolve the relative URIs in playlists and MPDs without the manifest's query string
// (RFC 3986 §5.2), so a query token on the manifest URL alone is refused on the second request.
import type { ManifestTokens } from '../manifests/manifest-token.ts';
import { epochSeconds } from '../signing/request.ts';
import type { SignRequest } from '../signing/signer.ts';
import type { Cdn } from './cdn.ts';

/**
 * - `path-token`: the token is a path segment ahead of the media path; relative URIs inherit it (nginx).
 * - `cookie`: the token is in cookies the edge reads on every request under the scope (CloudFront, Akamai).
 * - `tokenized-manifest`: st-api serves the playlists and the MPD with the CDN's query token on every
 *   media URI (api/manifests/); for edges that read only a query token.
 * - `query`: the token is in the manifest URL's query only; for edges that write it into the
 *   playlists themselves (Wowza Streaming Engine, Akamai Segmented Media Protection).
 */
export const DELIVERY_MODES = ['path-token', 'cookie', 'tokenized-manifest', 'query'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

/** What each signer supports; the first is its default. */
export const DELIVERY_MODES_BY_SCHEME: Readonly<Record<string, readonly DeliveryMode[]>> = {
  nginx: ['path-token', 'tokenized-manifest'],
  cloudfront: ['cookie', 'tokenized-manifest'],
  akamai: ['cookie', 'tokenized-manifest', 'query'],
  wowza: ['query'],
};

export interface Delivery {
  mode: DeliveryMode;
  /** tokenized-manifest: where st-api fetches the manifests (`scheme://host[:port]`, fixed, never from a request). */
  manifestOrigin?: string;
  /**
   * A parent domain of both the API's and the CDN's host (e.g. `example.com`): cookies then carry
   * `Domain=<it>` and browsers get them by `Set-Cookie`. Absent: host-only cookies for the CDN host,
   * returned in the JSON for native apps.
   */
  cookieDomain?: string;
}

/** One cookie to install before the first request to the CDN; the fields native cookie stores take. */
export interface PlaybackCookie {
  name: string;
  value: string;
  domain: string;
  path: string;
  /** When the edge stops accepting it (the token's expiry). */
  expiresAt: string;
  secure: boolean;
  httpOnly: boolean;
}

/** What a player needs to play: the URL and, in cookie mode, the cookies. */
export interface Grant {
  url: string;
  cookies?: PlaybackCookie[];
}

/** st-api's own manifest route, for tokenized-manifest delivery. */
export interface ManifestService {
  /** st-api's public base URL, e.g. `https://play.example.com`. */
  publicUrl: string;
  tokens: ManifestTokens;
}

export function grantAccess(cdn: Cdn, request: SignRequest, manifests?: ManifestService): Grant {
  const { delivery, signer } = cdn;
  const manifestUrl = request.origin + request.manifestPath;
  switch (delivery.mode) {
    case 'query':
      return { url: signer.sign(request) };
    case 'path-token': {
      if (signer.pathToken === undefined) throw new Error(`the ${signer.scheme} signer has no path token`);
      return { url: request.origin + signer.pathToken(request) + request.manifestPath };
    }
    case 'cookie': {
      if (signer.cookieToken === undefined) throw new Error(`the ${signer.scheme} signer has no cookie token`);
      const domain = delivery.cookieDomain ?? new URL(request.origin).hostname;
      const expiresAt = request.expiresAt.toISOString();
      // Scoped to the manifest's directory, so cookies for two titles (same names) never collide.
      const cookies = signer.cookieToken(request).map(([name, value]) => ({
        name,
        value,
        domain,
        path: request.scopePath,
        expiresAt,
        secure: request.origin.startsWith('https:'),
        httpOnly: true,
      }));
      return { url: manifestUrl, cookies };
    }
    case 'tokenized-manifest': {
      if (manifests === undefined) throw new Error('tokenized-manifest delivery needs the manifests configuration');
      const prefix = manifests.tokens.pathPrefix({ cdn: cdn.name, expires: epochSeconds(request.expiresAt), scopePath: request.scopePath });
      return { url: manifests.publicUrl + prefix + request.manifestPath };
    }
  }
}

/** True when `host` is `domain` or below it: then a browser accepts a cookie for `domain` from it. */
export function hostWithinDomain(host: string, domain: string): boolean {
  const h = host.toLowerCase();
  const d = domain.toLowerCase();
  return h === d || h.endsWith(`.${d}`);
}

/**
 * `Set-Cookie` without Expires or Max-Age: a session cookie, as AWS recommends for signed cookies
 * (the edge enforces the token's own expiry). SameSite=Lax: the CDN is on the API's site, so a
 * player's same-site requests carry it and other sites' requests do not.
 */
export function setCookieHeader(cookie: PlaybackCookie): string {
  return [
    `${cookie.name}=${cookie.value}`,
    `Domain=${cookie.domain}`,
    `Path=${cookie.path}`,
    ...(cookie.secure ? ['Secure'] : []),
    ...(cookie.httpOnly ? ['HttpOnly'] : []),
    'SameSite=Lax',
  ].join('; ');
}
