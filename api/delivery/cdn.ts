// Which edge serves the play, and the exact path bytes its token will cover.
import type { Rendition } from '../catalog/types.ts';
import type { UrlSigner } from '../signing/signer.ts';
import type { Delivery } from './delivery.ts';

export interface Cdn {
  name: string;
  /** `https://host[:port]`, no trailing slash. */
  origin: string;
  weight: number;
  /** Path below the origin where this CDN serves the catalog, e.g. `/media`; '' for the root. */
  pathPrefix: string;
  signer: UrlSigner;
  delivery: Delivery;
}

/** Weighted random choice; `random` is injectable so tests pin the draw. Weight 0 takes a CDN out of rotation. */
export function chooseCdn(cdns: readonly Cdn[], random: () => number = Math.random): Cdn | undefined {
  const total = cdns.reduce((sum, cdn) => sum + cdn.weight, 0);
  if (total <= 0) return undefined;
  let draw = random() * total;
  for (const cdn of cdns) {
    if (cdn.weight <= 0) continue;
    draw -= cdn.weight;
    if (draw < 0) return cdn;
  }
  return cdns.findLast((cdn) => cdn.weight > 0);
}

/**
 * Percent-encodes each segment once, here, so signers sign exactly the bytes sent on the wire
 * (re-encoding after signing is the classic signed-URL bug). Dot segments are refused: a
 * rendition path comes from the catalog and must never climb out of it.
 */
export function encodeMediaPath(pathPrefix: string, rendition: Rendition): { manifestPath: string; scopePath: string } {
  const segments = [...pathPrefix.split('/'), ...rendition.path.split('/')].filter((segment) => segment !== '');
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw new Error(`rendition path contains a dot segment: ${rendition.path}`);
  }
  const encoded = segments.map((segment) => encodeURIComponent(segment));
  const manifestPath = `/${encoded.join('/')}`;
  const scopePath = `/${encoded.slice(0, -1).join('/')}${encoded.length > 1 ? '/' : ''}`;
  return { manifestPath, scopePath };
}
