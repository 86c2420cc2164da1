import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Right } from '../../api/catalog/types.ts';
import { decideEntitlement } from '../../api/entitlement/decide.ts';

const NOW = Date.UTC(2026, 10, 21, 12);
const HOUR = 3600_000;

// Named fixtures: one right of each kind, in the states that matter.
const ownedHd: Right = { kind: 'own', maxHeight: 1080, expiresAt: null, devices: null };
const ownedSd: Right = { kind: 'own', maxHeight: 480, expiresAt: null, devices: null };
const liveRental: Right = { kind: 'rent', maxHeight: 2160, expiresAt: NOW + HOUR, devices: null };
const expiredRental: Right = { kind: 'rent', maxHeight: 2160, expiresAt: NOW - HOUR, devices: null };
const rentalEndingNow: Right = { kind: 'rent', maxHeight: 1080, expiresAt: NOW, devices: null };
const premiumPlan: Right = { kind: 'subscription', maxHeight: 2160, expiresAt: NOW + 30 * 24 * HOUR, devices: null };
const lapsedPlan: Right = { kind: 'subscription', maxHeight: 2160, expiresAt: NOW - HOUR, devices: null };
const mobilePlan: Right = { kind: 'subscription', maxHeight: 480, expiresAt: NOW + HOUR, devices: ['ios', 'android'] };
const phoneUhdPlan: Right = { kind: 'subscription', maxHeight: 2160, expiresAt: NOW + HOUR, devices: ['ios', 'android'] };
const endedPurchase: Right = { kind: 'own', maxHeight: 1080, expiresAt: NOW - HOUR, devices: null };

describe('decideEntitlement', () => {
  const cases: {
    name: string;
    rights: Right[];
    device: string;
    expected: ReturnType<typeof decideEntitlement> | { allowed: true; maxHeight: number };
  }[] = [
    { name: 'no rights at all → NOT_PURCHASED', rights: [], device: 'web', expected: { allowed: false, code: 'NOT_PURCHASED' } },
    { name: 'owned HD → allowed at 1080', rights: [ownedHd], device: 'tv', expected: { allowed: true, maxHeight: 1080 } },
    { name: 'live rental → allowed at its ceiling', rights: [liveRental], device: 'web', expected: { allowed: true, maxHeight: 2160 } },
    {
      name: 'expired rental only → RENTAL_EXPIRED',
      rights: [expiredRental],
      device: 'web',
      expected: { allowed: false, code: 'RENTAL_EXPIRED' },
    },
    {
      name: 'rental expiring this very millisecond → RENTAL_EXPIRED',
      rights: [rentalEndingNow],
      device: 'web',
      expected: { allowed: false, code: 'RENTAL_EXPIRED' },
    },
    {
      name: 'lapsed plan only → SUBSCRIPTION_EXPIRED',
      rights: [lapsedPlan],
      device: 'web',
      expected: { allowed: false, code: 'SUBSCRIPTION_EXPIRED' },
    },
    {
      name: 'expired rental and lapsed plan → RENTAL_EXPIRED (the purchase is more specific)',
      rights: [lapsedPlan, expiredRental],
      device: 'web',
      expected: { allowed: false, code: 'RENTAL_EXPIRED' },
    },
    {
      name: 'SD purchase plus premium plan → the better ceiling wins',
      rights: [ownedSd, premiumPlan],
      device: 'tv',
      expected: { allowed: true, maxHeight: 2160 },
    },
    {
      name: 'expired rental plus owned SD → owned SD plays',
      rights: [expiredRental, ownedSd],
      device: 'web',
      expected: { allowed: true, maxHeight: 480 },
    },
    { name: 'mobile plan on a phone → allowed at 480', rights: [mobilePlan], device: 'ios', expected: { allowed: true, maxHeight: 480 } },
    {
      name: 'mobile plan on a TV → DEVICE_NOT_ALLOWED',
      rights: [mobilePlan],
      device: 'tv',
      expected: { allowed: false, code: 'DEVICE_NOT_ALLOWED' },
    },
    {
      name: 'mobile plan plus expired rental on a TV → DEVICE_NOT_ALLOWED beats the expiry',
      rights: [mobilePlan, expiredRental],
      device: 'tv',
      expected: { allowed: false, code: 'DEVICE_NOT_ALLOWED' },
    },
    {
      name: 'mobile plan plus owned SD on a TV → the purchase covers every device',
      rights: [mobilePlan, ownedSd],
      device: 'tv',
      expected: { allowed: true, maxHeight: 480 },
    },
    {
      name: 'phone-only UHD plan plus owned HD on a TV → HD: a right that does not cover the device raises no ceiling',
      rights: [phoneUhdPlan, ownedHd],
      device: 'tv',
      expected: { allowed: true, maxHeight: 1080 },
    },
    {
      name: 'phone-only UHD plan plus owned HD on a phone → UHD',
      rights: [phoneUhdPlan, ownedHd],
      device: 'android',
      expected: { allowed: true, maxHeight: 2160 },
    },
    {
      name: 'expired UHD rental plus owned HD → HD: an expired right raises no ceiling',
      rights: [expiredRental, ownedHd],
      device: 'web',
      expected: { allowed: true, maxHeight: 1080 },
    },
    {
      name: 'an owned purchase whose end date has passed → NOT_PURCHASED (neither a rental nor a plan to renew)',
      rights: [endedPurchase],
      device: 'web',
      expected: { allowed: false, code: 'NOT_PURCHASED' },
    },
  ];

  for (const testCase of cases) {
    it(`when ${testCase.name}`, () => {
      const decision = decideEntitlement(testCase.rights, testCase.device, NOW);
      if (decision.allowed) {
        assert.deepEqual({ allowed: decision.allowed, maxHeight: decision.maxHeight }, testCase.expected);
      } else {
        assert.deepEqual(decision, testCase.expected);
      }
    });
  }
});
