// Who may play what, decided from purchase data alone: a pure function, tested case by case.
import type { Right } from '../catalog/types.ts';
import type { ProblemCode } from '../errors.ts';

export type Entitlement =
  | { allowed: true; maxHeight: number; rights: Right[] }
  | { allowed: false; code: Extract<ProblemCode, 'NOT_PURCHASED' | 'RENTAL_EXPIRED' | 'SUBSCRIPTION_EXPIRED' | 'DEVICE_NOT_ALLOWED'> };

function isActive(right: Right, nowMs: number): boolean {
  return right.expiresAt === null || right.expiresAt > nowMs;
}

function coversDevice(right: Right, device: string): boolean {
  return right.devices === null || right.devices.includes(device);
}

/**
 * The viewer may play when at least one right is active and covers the device; the quality
 * ceiling is the best among those rights (an SD purchase plus an HD plan gives HD).
 * A denial names the most useful reason for the client to show: a device restriction beats an
 * expiry (the viewer holds a live right, just not for this device), and an expired rental beats
 * an expired subscription only because it is the more specific purchase.
 */
export function decideEntitlement(rights: readonly Right[], device: string, nowMs: number): Entitlement {
  const active = rights.filter((right) => isActive(right, nowMs));
  const usable = active.filter((right) => coversDevice(right, device));
  if (usable.length > 0) {
    return { allowed: true, maxHeight: Math.max(...usable.map((right) => right.maxHeight)), rights: usable };
  }
  if (active.length > 0) return { allowed: false, code: 'DEVICE_NOT_ALLOWED' };
  if (rights.some((right) => right.kind === 'rent')) return { allowed: false, code: 'RENTAL_EXPIRED' };
  if (rights.some((right) => right.kind === 'subscription')) return { allowed: false, code: 'SUBSCRIPTION_EXPIRED' };
  return { allowed: false, code: 'NOT_PURCHASED' };
}
