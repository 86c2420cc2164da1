// The benchmark's catalog and traffic: a large generated Dataset (seeded into MariaDB with
// api/catalog/seed.ts) and the request mixes that autocannon replays. Deterministic (seeded PRNG),
// so two runs load the same rows and send the same requests.
import { ladder, STANDARD_DEVICE_CLASSES, type Dataset } from '../api/catalog/dataset.ts';
import type { Protocol } from '../api/catalog/types.ts';

export interface BenchSizes {
  contents: number;
  users: number;
  /** Zipf draws in the warm request pool (popular pairs repeat in it). */
  warmPool: number;
  /** Distinct (user, content) pairs in the cold sequence. */
  coldPool: number;
}

export const FULL_SIZES: BenchSizes = { contents: 10_000, users: 100_000, warmPool: 12_000, coldPool: 20_000 };
export const QUICK_SIZES: BenchSizes = { contents: 10_000, users: 100_000, warmPool: 2_000, coldPool: 6_000 };

/** Zipf exponent for both contents and users. */
export const ZIPF_S = 1;

export interface PlayRequest {
  userId: string;
  body: string;
}

/** mulberry32: small, fast, good enough for traffic mixes. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Draws ranks 0..n-1 with P(rank r) ∝ 1 / (r + 1)^s. */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let rank = 0; rank < n; rank++) {
    total += 1 / (rank + 1) ** s;
    cdf[rank] = total;
  }
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((cdf[mid] ?? 0) < target) low = mid + 1;
      else high = mid;
    }
    return low;
  };
}

const DAY_MS = 24 * 3600 * 1000;
const HEIGHT_SETS: readonly (readonly number[])[] = [
  [2160, 1080, 720, 480],
  [1080, 720, 480],
  [1080, 720, 480, 360],
  [720, 480],
];
/** No DASH-only titles: ios plays HLS only, and a 422 PROTOCOL_NOT_AVAILABLE is not part of the mix. */
const PROTOCOL_SETS: readonly (readonly Protocol[])[] = [['hls', 'dash'], ['hls', 'dash'], ['hls', 'dash'], ['hls']];
/** Only ceilings every ladder can satisfy (each has a 480p rung), so every play is answered 200. */
const QUALITY_MIX = ['auto', 'auto', 'auto', 'auto', 'auto', 'auto', 'auto', '1080p', '1080p', '720p', '480p'] as const;
const DEVICE_MIX = ['web', 'web', 'web', 'web', 'tv', 'tv', 'tv', 'ios', 'ios', 'android'] as const;
const MOBILE_DEVICES = ['ios', 'android'] as const;

/** What each user holds; decides which (content, device) pairs they may request. */
type Holding = { kind: 'all' } | { kind: 'mobile' } | { kind: 'purchases'; contents: number[] };

export interface BenchCatalog {
  dataset: Dataset;
  contentId(index: number): string;
  userId(index: number): string;
  holdings: Holding[];
  /** Contents in the mobile plan: indexes 0..mobilePlanSize-1. */
  mobilePlanSize: number;
}

/**
 * Users (by index; index = popularity rank): 50 % premium plan (UHD, every content and device),
 * 25 % standard plan (1080p, every content), 5 % mobile plan (480p, ios/android, the 30 % most popular
 * contents), 20 % purchases only (own or a live rental, 1-30 titles). One subscriber in ten also owns
 * a few titles, so some rights lookups return several rows.
 */
export function generateCatalog(sizes: BenchSizes, nowMs: number): BenchCatalog {
  const random = prng(20_240_601);
  const contentId = (index: number) => `tt${String(index).padStart(7, '0')}`;
  const userId = (index: number) => `u${String(index).padStart(7, '0')}`;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const contentRank = zipf(sizes.contents, ZIPF_S, random);

  const contents: Dataset['contents'] = [];
  for (let index = 0; index < sizes.contents; index++) {
    const id = contentId(index);
    contents.push({ id, title: `Title ${index}`, renditions: ladder(id, pick(PROTOCOL_SETS), pick(HEIGHT_SETS)) });
  }
  const all = contents.map((content) => content.id);
  const mobilePlanSize = Math.floor(sizes.contents * 0.3);
  const plans: Dataset['plans'] = [
    { id: 'premium', name: 'Premium', maxHeight: 2160, devices: null, contentIds: all },
    { id: 'standard', name: 'Standard', maxHeight: 1080, devices: null, contentIds: all },
    { id: 'mobile', name: 'Mobile', maxHeight: 480, devices: ['ios', 'android'], contentIds: all.slice(0, mobilePlanSize) },
  ];

  const purchases: Dataset['purchases'] = [];
  const subscriptions: Dataset['subscriptions'] = [];
  const holdings: Holding[] = [];
  const buy = (user: string, count: number): number[] => {
    const owned = new Set<number>();
    while (owned.size < count) owned.add(contentRank());
    for (const index of owned) {
      const rent = random() < 0.3;
      purchases.push({
        userId: user,
        contentId: contentId(index),
        kind: rent ? 'rent' : 'own',
        maxHeight: random() < 0.7 ? 2160 : 480,
        expiresAt: rent ? nowMs + (1 + Math.floor(random() * 30)) * DAY_MS : null,
      });
    }
    return [...owned];
  };
  for (let index = 0; index < sizes.users; index++) {
    const user = userId(index);
    const draw = random();
    if (draw < 0.8) {
      const planId = draw < 0.5 ? 'premium' : draw < 0.75 ? 'standard' : 'mobile';
      subscriptions.push({ userId: user, planId, expiresAt: nowMs + (1 + Math.floor(random() * 60)) * DAY_MS });
      holdings.push(planId === 'mobile' ? { kind: 'mobile' } : { kind: 'all' });
      if (random() < 0.1) buy(user, 1 + Math.floor(random() * 5));
    } else {
      holdings.push({ kind: 'purchases', contents: buy(user, 1 + Math.floor(random() * 30)) });
    }
  }

  return {
    dataset: { contents, deviceClasses: STANDARD_DEVICE_CLASSES, purchases, plans, subscriptions },
    contentId,
    userId,
    holdings,
    mobilePlanSize,
  };
}

function body(contentId: string, device: string, quality: string): string {
  return JSON.stringify({ contentId, device, quality });
}

/**
 * The warm mix: `size` independent draws, user by Zipf rank, then a content that user may play
 * (Zipf over the whole catalog for full-catalog plans, over the plan's titles for the mobile plan,
 * over the user's own titles for buyers). Replayed by uniform sampling, so popular pairs recur as
 * often as Zipf says. Every request is entitled: a 403 in a run is a bug, not part of the mix.
 */
export function warmRequests(catalog: BenchCatalog, size: number, sizes: BenchSizes): PlayRequest[] {
  const random = prng(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const userRank = zipf(sizes.users, ZIPF_S, random);
  const contentRank = zipf(sizes.contents, ZIPF_S, random);
  const mobileRank = zipf(catalog.mobilePlanSize, ZIPF_S, random);
  const requests: PlayRequest[] = [];
  while (requests.length < size) {
    const user = userRank();
    const holding = catalog.holdings[user];
    if (holding === undefined) continue;
    const quality = pick(QUALITY_MIX);
    if (holding.kind === 'all') {
      requests.push({ userId: catalog.userId(user), body: body(catalog.contentId(contentRank()), pick(DEVICE_MIX), quality) });
    } else if (holding.kind === 'mobile') {
      requests.push({ userId: catalog.userId(user), body: body(catalog.contentId(mobileRank()), pick(MOBILE_DEVICES), quality) });
    } else {
      // Buyers' titles were drawn by popularity already; the most popular they own comes first.
      const owned = [...holding.contents].sort((a, b) => a - b);
      const index = owned[Math.min(owned.length - 1, Math.floor(owned.length * random() ** 2))] ?? 0;
      requests.push({ userId: catalog.userId(user), body: body(catalog.contentId(index), pick(DEVICE_MIX), quality) });
    }
  }
  return requests;
}

/**
 * The cold sequence: `size` distinct (user, content) pairs, replayed in order. Contents walk a
 * shuffled permutation of the whole catalog, so a content recurs only after every other one has
 * been requested; users are full-catalog subscribers (so every pair is entitled) taken from
 * `users` in turn. With 1 s content and rights TTLs this makes every content and rights lookup miss.
 */
export function coldRequests(catalog: BenchCatalog, users: readonly number[], size: number, sizes: BenchSizes): PlayRequest[] {
  const random = prng(11);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const order = Array.from({ length: sizes.contents }, (_, index) => index);
  for (let index = order.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [order[index], order[other]] = [order[other] ?? 0, order[index] ?? 0];
  }
  const fullCatalogUsers = users.filter((user) => catalog.holdings[user]?.kind === 'all');
  if (fullCatalogUsers.length === 0) throw new Error('no full-catalog subscriber among the token pool');
  const requests: PlayRequest[] = [];
  for (let index = 0; index < size; index++) {
    const user = fullCatalogUsers[index % fullCatalogUsers.length] ?? 0;
    const content = order[index % order.length] ?? 0;
    requests.push({ userId: catalog.userId(user), body: body(catalog.contentId(content), pick(DEVICE_MIX), pick(QUALITY_MIX)) });
  }
  return requests;
}

/** User index from a generated user id. */
export function userIndex(userId: string): number {
  return Number.parseInt(userId.slice(1), 10);
}
