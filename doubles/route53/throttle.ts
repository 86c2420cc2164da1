// Route53's API throttling as token buckets, per account, with the clock passed in (so the rules
// can be tested without sleeping). Source: Amazon Route 53 Developer Guide, "Throttling for Amazon
// Route 53 API requests" (DeveloperGuide/throttling-api-requests.html):
//   - two independent limits per account: request rate, and change throughput ("the number of
//     individual DNS record changes per second, aggregated across the API actions that modify DNS data");
//   - request rate at two levels: one bucket for all the account's requests and one per API action;
//     "requests consume tokens from both buckets, and are throttled if either bucket is empty";
//   - each bucket has a maximum capacity (the burst) and a refill rate per second (the sustained rate);
//     refill tokens that arrive at a full bucket are discarded;
//   - a throttled request is HTTP 400, Code Throttling, Message "Rate exceeded".
// Not in the stored copy of that page, so modelled as assumptions (see README): the change-throughput
// bucket's size and refill rate (no default; pass `changes`), what counts as one change (here: one
// Change element), whether a throttled request still uses up tokens (here: it takes none), and
// whether refill is continuous or once a second (here: continuous).

export interface BucketSpec {
  /** Maximum tokens: the burst. */
  readonly capacity: number;
  /** Tokens added per second: the sustained rate. */
  readonly refillPerSecond: number;
}

export interface ThrottleLimits {
  /** Every request the account makes draws one token here. */
  readonly account: BucketSpec;
  /** Per-operation request buckets; an operation not named uses `otherOperations`. */
  readonly operations?: Readonly<Record<string, BucketSpec>>;
  /** The per-operation bucket of any operation not in `operations`; none when undefined. */
  readonly otherOperations?: BucketSpec;
  /** Change throughput: one token per Change in a ChangeResourceRecordSets request; none when undefined. */
  readonly changes?: BucketSpec;
}

/**
 * The request-rate buckets as documented (table "Request rate limits per API operation"): all
 * operations combined 50 / 10 per second; any operation not listed 50 / 10; of the operations the
 * double serves only CreateHostedZone is listed, at 40 / 2. ChangeResourceRecordSets,
 * ListResourceRecordSets, GetChange, GetHostedZone and ListHostedZonesByName are not listed.
 */
export const DOCUMENTED_LIMITS: ThrottleLimits = {
  account: { capacity: 50, refillPerSecond: 10 },
  otherOperations: { capacity: 50, refillPerSecond: 10 },
  operations: { CreateHostedZone: { capacity: 40, refillPerSecond: 2 } },
};

/** The limit AWS documented before the update: five requests per second per account (older DNSLimitations.html). */
export const LEGACY_LIMITS: ThrottleLimits = { account: { capacity: 5, refillPerSecond: 5 } };

export type BucketName = 'account' | 'operation' | 'changes';

export class TokenBucket {
  readonly spec: BucketSpec;
  #tokens: number;
  #updatedMs: number;

  constructor(spec: BucketSpec, nowMs: number) {
    if (!(spec.capacity > 0) || !(spec.refillPerSecond >= 0)) throw new Error('a bucket needs capacity > 0 and refillPerSecond >= 0');
    this.spec = spec;
    this.#tokens = spec.capacity;
    this.#updatedMs = nowMs;
  }

  /** Tokens available at nowMs (refilled up to capacity; a clock that goes back adds nothing). */
  available(nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - this.#updatedMs);
    this.#tokens = Math.min(this.spec.capacity, this.#tokens + (elapsedMs / 1000) * this.spec.refillPerSecond);
    this.#updatedMs = Math.max(this.#updatedMs, nowMs);
    return this.#tokens;
  }

  /** Removes count tokens; the caller checked available() first. */
  take(count: number, nowMs: number): void {
    this.#tokens = this.available(nowMs) - count;
  }
}

/** One account's buckets. */
export class AccountThrottle {
  readonly #limits: ThrottleLimits;
  readonly #account: TokenBucket;
  readonly #operations = new Map<string, TokenBucket>();
  readonly #changes: TokenBucket | undefined;

  constructor(limits: ThrottleLimits, nowMs: number) {
    this.#limits = limits;
    this.#account = new TokenBucket(limits.account, nowMs);
    this.#changes = limits.changes === undefined ? undefined : new TokenBucket(limits.changes, nowMs);
  }

  /**
   * Admits a request with `changes` record changes, or names the first bucket without enough tokens.
   * All or nothing: a throttled request takes no token from any bucket.
   */
  admit(operation: string, changes: number, nowMs: number): { admitted: true } | { admitted: false; bucket: BucketName } {
    const draws: { bucket: TokenBucket; count: number; name: BucketName }[] = [{ bucket: this.#account, count: 1, name: 'account' }];
    const perOperation = this.#operationBucket(operation, nowMs);
    if (perOperation !== undefined) draws.push({ bucket: perOperation, count: 1, name: 'operation' });
    if (this.#changes !== undefined && changes > 0) draws.push({ bucket: this.#changes, count: changes, name: 'changes' });
    const short = draws.find((draw) => draw.bucket.available(nowMs) < draw.count);
    if (short !== undefined) return { admitted: false, bucket: short.name };
    for (const draw of draws) draw.bucket.take(draw.count, nowMs);
    return { admitted: true };
  }

  #operationBucket(operation: string, nowMs: number): TokenBucket | undefined {
    const spec = this.#limits.operations?.[operation] ?? this.#limits.otherOperations;
    if (spec === undefined) return undefined;
    let bucket = this.#operations.get(operation);
    if (bucket === undefined) {
      bucket = new TokenBucket(spec, nowMs);
      this.#operations.set(operation, bucket);
    }
    return bucket;
  }
}
