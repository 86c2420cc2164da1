// Signed URLs carry no viewer identity (no IP binding is configured), so every viewer who plays the
// same manifest from the same CDN within one time slot can get the same URL. Signing once per slot
// takes the per-play cost of an RSA signature (CloudFront) off the hot path.

/** Issue times are rounded down to this slot; a URL then lives between TTL − slot and TTL. */
export const URL_SLOT_SECONDS = 30;
const MAX_ENTRIES = 100_000;

export class SignedUrlCache {
  #slot = -1;
  readonly #urls = new Map<string, string>();

  /** The URL for `key` in `slot`, signing it on first use; entries of earlier slots are dropped. */
  get(slot: number, key: string, sign: () => string): string {
    if (slot !== this.#slot || this.#urls.size >= MAX_ENTRIES) {
      this.#urls.clear();
      this.#slot = slot;
    }
    let url = this.#urls.get(key);
    if (url === undefined) {
      url = sign();
      this.#urls.set(key, url);
    }
    return url;
  }
}
