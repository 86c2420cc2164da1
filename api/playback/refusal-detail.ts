// What a client developer reads in `detail` when a play is refused for its protocol or quality: what
// is possible instead. Pure functions of the request, the device class and the content; the codes
// themselves are decided in rendition.ts.
import type { Content, DeviceClass, Protocol } from '../catalog/types.ts';
import { qualityLabel } from './rendition.ts';

function list(items: readonly string[], conjunction: 'and' | 'or' = 'and'): string {
  return items.length <= 1 ? (items[0] ?? 'nothing') : `${items.slice(0, -1).join(', ')} ${conjunction} ${items.at(-1) ?? ''}`;
}

function packagedProtocols(content: Content): Protocol[] {
  return [...new Set(content.renditions.map((rendition) => rendition.protocol))].sort();
}

/** PROTOCOL_NOT_SUPPORTED: the device class does not play the requested protocol. */
export function protocolNotSupportedDetail(requested: Protocol, device: DeviceClass): string {
  return `Device class "${device.name}" plays ${list(device.protocols)}, not ${requested}; ask for ${list(device.protocols, 'or')}, or leave protocol out`;
}

/** PROTOCOL_NOT_AVAILABLE: the content is not packaged in a protocol both the request and the device allow. */
export function protocolNotAvailableDetail(requested: Protocol | undefined, device: DeviceClass, content: Content): string {
  const packaged = packagedProtocols(content);
  const wanted = requested === undefined ? `device class "${device.name}" plays ${list(device.protocols)}` : `${requested} was asked for`;
  return `"${content.id}" is packaged in ${list(packaged)} only, and ${wanted}`;
}

export interface Ceilings {
  /** From the request's `quality` (Infinity for auto). */
  requested: number;
  /** The best right the viewer holds for this content on this device. */
  rights: number;
  device: number;
}

/**
 * QUALITY_NOT_AVAILABLE: no rendition in `protocol` at or under every ceiling. Either the request's
 * own ceiling was too low (then the best the viewer may get is named), or the viewer's rights or the
 * device class stop below the lowest rendition (then which one, and the lowest rendition, are named).
 */
export function qualityNotAvailableDetail(content: Content, protocol: Protocol, device: DeviceClass, ceilings: Ceilings): string {
  const heights = content.renditions.filter((rendition) => rendition.protocol === protocol).map((rendition) => rendition.height);
  const viewerCeiling = Math.min(ceilings.rights, ceilings.device);
  const best = Math.max(...heights.filter((height) => height <= viewerCeiling));
  if (Number.isFinite(best)) {
    return `Nothing of "${content.id}" in ${protocol} is at or under the requested ${qualityLabel(ceilings.requested)}; the best this viewer may get is ${qualityLabel(best)}: ask for ${qualityLabel(best)} or auto`;
  }
  const lowest = Math.min(...heights);
  const limits = [
    ...(ceilings.rights < lowest ? [`the viewer's rights allow up to ${qualityLabel(ceilings.rights)}`] : []),
    ...(ceilings.device < lowest ? [`device class "${device.name}" plays up to ${qualityLabel(ceilings.device)}`] : []),
  ];
  return `No quality of "${content.id}" can be played: ${list(limits)}, and its lowest ${protocol} rendition is ${qualityLabel(lowest)}`;
}
