// Signed URLs and cookies carry no viewer identity (no IP binding is configured), so every viewer
// who plays the same manifest from the same CDN within one time slot can get the same grant.
// Signing once per slot takes the per-play cost of an RSA signature (CloudFront) off the hot path.
import { TtlMap } from '../../common/ttl-map.ts';
import type { Grant } from './delivery.ts';

/** Issue times are rounded down to this slot; a grant then lives between TTL − slot and TTL. */
export const URL_SLOT_SECONDS = 30;
const MAX_ENTRIES = 100_000;

export class GrantCache {
  readonly #grants: TtlMap<string, Grant>;
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#grants = new TtlMap({ maxEntries: MAX_ENTRIES, now });
    this.#now = now;
  }

  /**
   * The grant for `key` in the current slot, signed on first use. Edges compare whole epoch seconds:
   * `sign` is given the slot's start (epoch seconds) as the issue time, so grants signed in one slot
   * are identical, and the caller states the same issuedAt the token carries.
   */
  issue(key: string, sign: (issuedAt: number) => Grant): { issuedAt: number; grant: Grant } {
    const nowSeconds = this.#now() / 1000;
    const issuedAt = Math.floor(nowSeconds / URL_SLOT_SECONDS) * URL_SLOT_SECONDS;
    const slotKey = `${issuedAt} ${key}`;
    let grant = this.#grants.get(slotKey);
    if (grant === undefined) {
      grant = sign(issuedAt);
      // Kept to the end of its slot: the next slot signs anew.
      this.#grants.set(slotKey, grant, (issuedAt + URL_SLOT_SECONDS - nowSeconds) * 1000);
    }
    return { issuedAt, grant };
  }
}
