// The one in-process cache shape: entries that expire, in a map that cannot grow without bound.
import { LRUCache } from 'lru-cache';

/**
 * A map whose entries live `ttlMs` each and whose size is capped: when full, the least recently used
 * entry makes room (lru-cache). Expiry is judged here, on the caller's clock (tests move it), and is
 * exclusive: an entry set at t with ttlMs d is served while now < t + d. lru-cache's own ttl reads
 * performance.now() unless told otherwise and serves through the last millisecond, hence not used.
 */
export class TtlMap<K extends NonNullable<unknown>, V extends NonNullable<unknown>> {
  readonly #entries: LRUCache<K, { value: V; until: number }>;
  readonly #now: () => number;

  constructor(options: { maxEntries: number; now: () => number }) {
    this.#entries = new LRUCache({ max: options.maxEntries });
    this.#now = options.now;
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > this.#now()) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  set(key: K, value: V, ttlMs: number): void {
    this.#entries.set(key, { value, until: this.#now() + ttlMs });
  }

  get size(): number {
    return this.#entries.size;
  }
}
