// Which manifest to hand out: pure functions of the content, the device and the ceilings.
import type { Content, DeviceClass, Protocol, Rendition } from '../catalog/types.ts';
import type { ProblemCode } from '../errors.ts';

export type Choice<T> = { ok: true; value: T } | { ok: false; code: ProblemCode };

/**
 * An explicit protocol must be one the device plays and the content is packaged in.
 * Without one, the device's default wins, else any other protocol the device plays and the content has,
 * so that a title packaged only in DASH still plays on a device that prefers HLS but speaks both.
 */
export function chooseProtocol(requested: Protocol | undefined, device: DeviceClass, content: Content): Choice<Protocol> {
  const packaged = new Set(content.renditions.map((rendition) => rendition.protocol));
  if (requested !== undefined) {
    if (!device.protocols.includes(requested)) return { ok: false, code: 'PROTOCOL_NOT_SUPPORTED' };
    if (!packaged.has(requested)) return { ok: false, code: 'PROTOCOL_NOT_AVAILABLE' };
    return { ok: true, value: requested };
  }
  const preference = [device.defaultProtocol, ...device.protocols.filter((p) => p !== device.defaultProtocol)];
  const protocol = preference.find((p) => packaged.has(p));
  return protocol === undefined ? { ok: false, code: 'PROTOCOL_NOT_AVAILABLE' } : { ok: true, value: protocol };
}

/** The best rendition at or under every ceiling (request, right, device). */
export function chooseRendition(renditions: readonly Rendition[], protocol: Protocol, ceilings: readonly number[]): Choice<Rendition> {
  const ceiling = Math.min(...ceilings);
  let best: Rendition | undefined;
  for (const rendition of renditions) {
    if (rendition.protocol !== protocol || rendition.height > ceiling) continue;
    if (best === undefined || rendition.height > best.height) best = rendition;
  }
  return best === undefined ? { ok: false, code: 'QUALITY_NOT_AVAILABLE' } : { ok: true, value: best };
}

export const QUALITIES = ['2160p', '1440p', '1080p', '720p', '480p', '360p', '240p'] as const;
export type Quality = (typeof QUALITIES)[number];

export function heightOf(quality: Quality | 'auto'): number {
  return quality === 'auto' ? Number.POSITIVE_INFINITY : Number.parseInt(quality, 10);
}

export function qualityLabel(height: number): string {
  return `${height}p`;
}
