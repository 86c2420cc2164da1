// The story of one play: who is asking, within their budget, what they may play, on which device,
// at which quality, from which edge, with which token. The route hands over an authenticated viewer
// and a validated request; what the play costs and how it ends (issued or refused) is counted here.
import type { CatalogStore, Protocol } from '../catalog/types.ts';
import { chooseCdn, encodeMediaPath, type Cdn } from '../delivery/cdn.ts';
import { grantAccess, type DeliveryMode, type ManifestService, type PlaybackCookie } from '../delivery/delivery.ts';
import type { GrantCache } from '../delivery/grant-cache.ts';
import { decideEntitlement } from '../entitlement/decide.ts';
import { AppError, type ProblemCode } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Viewer } from '../auth/client-token.ts';
import type { RateLimiter } from './rate-limit.ts';
import { protocolNotAvailableDetail, protocolNotSupportedDetail, qualityNotAvailableDetail } from './refusal-detail.ts';
import type { PlaybackRequest } from './request.ts';
import { chooseProtocol, chooseRendition, heightOf, qualityLabel } from './rendition.ts';

export interface PlaybackUrl {
  url: string;
  protocol: Protocol;
  quality: string;
  cdn: string;
  expiresAt: string;
  /** How the token reaches the edge; in `cookie` mode the player must send `cookies`. */
  delivery: DeliveryMode;
  cookies?: PlaybackCookie[];
}

export interface PlaybackPolicy {
  /** How long a URL stays valid: longer than the longest pause a viewer takes mid-title. */
  urlTtlSeconds: number;
  /** Start of validity is back-dated by this much, because edges verify with their own clocks and offer no leeway. */
  clockSkewSeconds: number;
}

export interface PlaybackDeps {
  catalog: CatalogStore;
  cdns: readonly Cdn[];
  policy: PlaybackPolicy;
  now: () => number;
  random?: () => number;
  /** Gives the issue time (the time slot's start) and reuses a grant signed earlier in the same slot. */
  grantCache: GrantCache;
  /** st-api's manifest route, when a CDN uses tokenized-manifest delivery. */
  manifests?: ManifestService;
  rateLimiter: RateLimiter;
  metrics: Metrics;
}

export interface PlaybackUseCase {
  /** One play for an authenticated viewer and a validated request; counts the URL issued. */
  issue(viewer: Viewer, request: PlaybackRequest): Promise<PlaybackUrl>;
  /** Counts a refused play by its problem code, wherever it was refused: token, body, budget, rights, dependency. */
  refused(code: ProblemCode): void;
}

export function playbackUseCase(deps: PlaybackDeps): PlaybackUseCase {
  return {
    async issue(viewer, request) {
      // The budget is judged before any lookup, so a refusal costs the one counter command and
      // nothing else (no catalog query, no cache entry), and a client looping on a denial is limited too.
      // A limiter that fails, fails open: Redis trouble never costs a play.
      const { allowed, retryAfterSeconds } = await deps.rateLimiter
        .consume(viewer.userId, deps.now())
        .catch(() => ({ allowed: true, retryAfterSeconds: 0 }));
      if (!allowed) throw new AppError('RATE_LIMITED', { retryAfterSeconds });
      const playback = await issuePlaybackUrl(deps, viewer, request);
      deps.metrics.urlsIssued.inc({ cdn: playback.cdn, protocol: playback.protocol, quality: playback.quality });
      return playback;
    },
    refused(code) {
      deps.metrics.denials.inc({ code });
    },
  };
}

async function issuePlaybackUrl(deps: PlaybackDeps, viewer: Viewer, request: PlaybackRequest): Promise<PlaybackUrl> {
  const [device, { content, rights }] = await Promise.all([
    deps.catalog.deviceClass(request.device),
    deps.catalog.playData(viewer.userId, request.contentId),
  ]);
  if (device === undefined) throw new AppError('UNKNOWN_DEVICE', { detail: `Unknown device class "${request.device}"` });
  if (!device.enabled) throw new AppError('DEVICE_NOT_ALLOWED', { detail: `Device class "${device.name}" is not enabled` });
  if (content === undefined) throw new AppError('CONTENT_NOT_FOUND');

  const now = deps.now();
  const entitlement = decideEntitlement(rights, device.name, now);
  if (!entitlement.allowed) throw new AppError(entitlement.code);

  const protocol = chooseProtocol(request.protocol, device, content);
  if (!protocol.ok) {
    const detail =
      protocol.code === 'PROTOCOL_NOT_SUPPORTED' && request.protocol !== undefined
        ? protocolNotSupportedDetail(request.protocol, device)
        : protocolNotAvailableDetail(request.protocol, device, content);
    throw new AppError(protocol.code, { detail });
  }
  const ceilings = { requested: heightOf(request.quality), rights: entitlement.maxHeight, device: device.maxHeight };
  const rendition = chooseRendition(content.renditions, protocol.value, [ceilings.requested, ceilings.rights, ceilings.device]);
  if (!rendition.ok) throw new AppError(rendition.code, { detail: qualityNotAvailableDetail(content, protocol.value, device, ceilings) });

  const cdn = chooseCdn(deps.cdns, deps.random);
  if (cdn === undefined) throw new AppError('DEPENDENCY_UNAVAILABLE', { detail: 'No CDN is in rotation', retryAfterSeconds: 30 });
  const { manifestPath, scopePath } = encodeMediaPath(cdn.pathPrefix, rendition.value);
  // The token and the response state the same expiry: both come from the slot's issue time.
  const expiryOf = (issuedAt: number) => new Date((issuedAt + deps.policy.urlTtlSeconds) * 1000);
  const { issuedAt, grant } = deps.grantCache.issue(`${cdn.name} ${manifestPath}`, (slotStart) => {
    const notBefore = new Date((slotStart - deps.policy.clockSkewSeconds) * 1000);
    return grantAccess(cdn, { origin: cdn.origin, manifestPath, scopePath, notBefore, expiresAt: expiryOf(slotStart) }, deps.manifests);
  });

  return {
    url: grant.url,
    protocol: protocol.value,
    quality: qualityLabel(rendition.value.height),
    cdn: cdn.name,
    expiresAt: expiryOf(issuedAt).toISOString(),
    delivery: cdn.delivery.mode,
    ...(grant.cookies === undefined ? {} : { cookies: grant.cookies }),
  };
}
