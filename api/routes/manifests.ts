// GET /v1/manifests/<cdn>/<key id>/<expires>/<hmac>/<catalog path>: tokenized-manifest delivery.
// st-api answers with the origin's playlist or MPD, every media URI pointing at the CDN with the
// CDN's query token; variant playlists stay relative, so they come back here under the same token.
import express, { type Router } from 'express';
import { LRUCache } from 'lru-cache';
import type { Cdn } from '../delivery/cdn.ts';
import { AppError, type ProblemCode } from '../errors.ts';
import type { ManifestCache } from '../manifests/origin-cache.ts';
import type { RenderCache } from '../manifests/render-cache.ts';
import { ManifestOriginError } from '../manifests/origin-cache.ts';
import { MANIFEST_ROUTE, type ManifestTokens } from '../manifests/manifest-token.ts';
import { compileDash, compileHls, CONTENT_TYPES, manifestKindOf } from '../manifests/tokenize.ts';
import type { Metrics } from '../metrics.ts';
import type { PlaybackPolicy } from '../playback/issue-playback-url.ts';

export interface ManifestRouteDeps {
  cdns: readonly Cdn[];
  tokens: ManifestTokens;
  cache: ManifestCache;
  renders: RenderCache;
  policy: PlaybackPolicy;
  metrics: Metrics;
  now: () => number;
}

// Catalog paths only: percent-encoded path segments as encodeMediaPath writes them (RFC 3986
// pchar), none that decodes to a dot segment or a separator, a manifest at the end.
const SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()+,;=:@]|%[0-9A-Fa-f]{2}){1,255}$/;

function isCatalogSegment(segment: string): boolean {
  if (!SEGMENT.test(segment)) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return false; // not UTF-8 once decoded: no catalog path looks like that
  }
  return decoded !== '.' && decoded !== '..' && !/[/\\\0]/.test(decoded);
}

const MAX_PATH = 512;

const RESULT_OF: Partial<Record<ProblemCode, string>> = {
  MANIFEST_TOKEN_INVALID: 'token-invalid',
  MANIFEST_TOKEN_EXPIRED: 'token-expired',
  MANIFEST_NOT_FOUND: 'not-found',
  MANIFEST_ORIGIN_UNAVAILABLE: 'origin-unavailable',
  MANIFEST_ORIGIN_INVALID: 'origin-invalid',
};

export function manifestRoutes(deps: ManifestRouteDeps): Router {
  const router = express.Router();
  const cdns = new Map(deps.cdns.filter((cdn) => cdn.delivery.mode === 'tokenized-manifest').map((cdn) => [cdn.name, cdn]));
  // The CDN token for a scope is fully determined by the manifest URL's expiry, so viewers of one
  // issue slot share it and it is signed once.
  const cdnTokens = new LRUCache<string, string>({ max: 10_000 });

  // The URL itself is the credential (no cookies), so any web page may read the answer, refusals
  // included: a player must see the 403, not a CORS failure. Set ahead of the route, so an answer
  // the router gives itself (a path it cannot decode) carries it too.
  router.use(MANIFEST_ROUTE, (_req, res, next) => {
    res.set('Access-Control-Allow-Origin', '*');
    next();
  });

  router.get(`${MANIFEST_ROUTE}/*rest`, async (req, res) => {
    // Raw, still percent-encoded: the token signs the bytes of the path, not their decoding.
    const [cdnName = '', keyId = '', expires = '', hmac = '', ...segments] = req.path.slice(MANIFEST_ROUTE.length + 1).split('/');
    const cdn = cdns.get(cdnName);
    const path = `/${segments.join('/')}`;
    const kind = manifestKindOf(path);
    if (cdn?.delivery.manifestOrigin === undefined || kind === undefined || path.length > MAX_PATH || !segments.every(isCatalogSegment)) {
      throw new AppError('NOT_FOUND');
    }
    const counted = (code: ProblemCode, options: ConstructorParameters<typeof AppError>[1] = {}) => {
      deps.metrics.manifestRequests.inc({ cdn: cdn.name, result: RESULT_OF[code] ?? code });
      return new AppError(code, options);
    };

    const check = deps.tokens.check({ cdn: cdn.name, keyId, expires, hmac }, path, deps.now());
    if (!check.ok) throw counted(check.why === 'expired' ? 'MANIFEST_TOKEN_EXPIRED' : 'MANIFEST_TOKEN_INVALID');

    let served: Awaited<ReturnType<ManifestCache['get']>>;
    try {
      const place = { documentPath: path, cdnOrigin: cdn.origin };
      served = await deps.cache.get({
        cdn: cdn.name,
        url: cdn.delivery.manifestOrigin + path,
        compile: (text) => (kind === 'hls' ? compileHls(text, place) : compileDash(text, place)),
      });
    } catch (error) {
      if (!(error instanceof ManifestOriginError)) throw error;
      if (error.kind === 'not-found') throw counted('MANIFEST_NOT_FOUND');
      if (error.kind === 'invalid') throw counted('MANIFEST_ORIGIN_INVALID', { cause: error, detail: error.message });
      throw counted('MANIFEST_ORIGIN_UNAVAILABLE', { cause: error, retryAfterSeconds: 5 });
    }

    const expiresAt = Number(expires);
    const tokenKey = `${cdn.name} ${check.scopePath} ${expiresAt}`;
    let query = cdnTokens.get(tokenKey);
    if (query === undefined) {
      const pairs = cdn.signer.queryToken({
        origin: cdn.origin,
        manifestPath: path,
        scopePath: check.scopePath,
        notBefore: new Date((expiresAt - deps.policy.urlTtlSeconds - deps.policy.clockSkewSeconds) * 1000),
        expiresAt: new Date(expiresAt * 1000),
      });
      query = pairs.map(([name, value]) => `${name}=${value}`).join('&');
      cdnTokens.set(tokenKey, query);
    }

    const rendering = deps.renders.get(served.manifest, query);
    const gzipped = req.acceptsEncodings('gzip', 'identity') === 'gzip';
    const body = gzipped ? await rendering.gzip : rendering.identity;
    deps.metrics.manifestRequests.inc({ cdn: cdn.name, result: served.stale ? 'stale' : 'served' });
    res
      .status(200)
      .type(CONTENT_TYPES[served.manifest.kind])
      // It carries a viewer's token: never in a shared cache.
      .set('Cache-Control', 'private, max-age=60')
      .set('Vary', 'Accept-Encoding');
    if (gzipped) res.set('Content-Encoding', 'gzip');
    res.send(body);
  });

  return router;
}
