// Signed URLs and cookies carry no viewer identity (no IP binding is configured), so every viewer
// who plays the same manifest from the same CDN within one time slot can get the same grant.
// Signing once per slot takes the per-play cost of an RSA signature (CloudFront) off the hot path.
import type { Grant } from './delivery.ts';


/** Issue times are rounded down to this slot; a grant then lives between TTL − slot and TTL. */
export const URL_SLOT_SECONDS = 30;
const MAX_ENTRIES = 100_000;

export class GrantCache {
  #slot = -1;
  readonly #grants = new Map<string, Grant>();

  /** The grant for `key` in `slot`, signing it on first use; entries of earlier slots are dropped. */
  get(slot: number, key: string, sign: () => Grant): Grant {
    if (slot !== this.#slot || this.#grants.size >= MAX_ENTRIES) {
      this.#grants.clear();
      this.#slot = slot;
    }
    let grant = this.#grants.get(key);
    if (grant === undefined) {
      grant = sign();
      this.#grants.set(key, grant);
    }
    return grant;
  }
}
