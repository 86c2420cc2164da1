// Short-lived Redis cache in front of the catalog. Redis is optional: any Redis failure is a miss,
// so a play is answered from MySQL after at most one bounded wait, never failed because of Redis.
import type { Redis } from 'ioredis';
import type { CatalogStore, Content, DeviceClass, Right } from '../catalog/types.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../logger.ts';

export interface CacheTtls {
  contentSeconds: number;
  deviceClassSeconds: number;
  /** For rights that grant a play right now. */
  rightsSeconds: number;
  /** For anything that denies: unknown content, no right, expired right. Short, so a viewer who has just bought plays at once. */
  denialSeconds: number;
}

type Kind = 'content' | 'rights' | 'device_class';
const PREFIX = 'st-api:v1';
/**
 * Content and device classes also stay a few seconds in process memory: they change rarely, every
 * play needs them, and a GET saved is CPU saved on the node and on Redis. Rights never do (a new
 * purchase must show at once, from any node).
 */
const LOCAL_SECONDS = 5;
const LOCAL_MAX_ENTRIES = 20_000;

export class CachedCatalogStore implements CatalogStore {
  readonly #origin: CatalogStore;
  readonly #redis: Redis;
  readonly #ttls: CacheTtls;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #local = new Map<string, { value: unknown; until: number }>();

  constructor(deps: { origin: CatalogStore; redis: Redis; ttls: CacheTtls; metrics: Metrics; logger: Logger; now: () => number }) {
    this.#origin = deps.origin;
    this.#redis = deps.redis;
    this.#ttls = deps.ttls;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#now = deps.now;
  }

  content(contentId: string): Promise<Content | undefined> {
    return this.#inProcess(`content:${contentId}`, () => this.#cached('content', `${PREFIX}:content:${contentId}`, () => this.#origin.content(contentId), (content) =>
      content === undefined ? this.#ttls.denialSeconds : this.#ttls.contentSeconds,
    ));
  }

  deviceClass(name: string): Promise<DeviceClass | undefined> {
    return this.#inProcess(`device:${name}`, () => this.#cached('device_class', `${PREFIX}:device:${name}`, () => this.#origin.deviceClass(name), (device) =>
      device === undefined ? this.#ttls.denialSeconds : this.#ttls.deviceClassSeconds,
    ));
  }

  rights(userId: string, contentId: string): Promise<Right[]> {
    return this.#cached('rights', `${PREFIX}:rights:${userId}:${contentId}`, () => this.#origin.rights(userId, contentId), (rights) => {
      const now = this.#now();
      const grants = rights.some((right) => right.expiresAt === null || right.expiresAt > now);
      return grants ? this.#ttls.rightsSeconds : this.#ttls.denialSeconds;
    });
  }

  /** Only found values are kept locally; a miss is asked again next time. */
  async #inProcess<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = this.#now();
    const entry = this.#local.get(key);
    if (entry !== undefined && entry.until > now) return entry.value as T;
    const value = await load();
    if (value !== undefined) {
      if (this.#local.size >= LOCAL_MAX_ENTRIES) this.#local.clear();
      this.#local.set(key, { value, until: now + LOCAL_SECONDS * 1000 });
    }
    return value;
  }

  async #cached<T>(kind: Kind, key: string, load: () => Promise<T>, ttlSeconds: (value: T) => number): Promise<T> {
    const hit = await this.#read<T>(kind, key);
    if (hit !== undefined) return hit.value;
    const value = await load();
    this.#write(kind, key, value, ttlSeconds(value));
    return value;
  }

  async #read<T>(kind: Kind, key: string): Promise<{ value: T } | undefined> {
    if (this.#redis.status !== 'ready') {
      this.#metrics.cacheLookups.inc({ kind, result: 'error' });
      return undefined;
    }
    try {
      const raw = await this.#metrics.observe('redis', 'get', () => this.#redis.get(key));
      if (raw === null) {
        this.#metrics.cacheLookups.inc({ kind, result: 'miss' });
        return undefined;
      }
      const entry = JSON.parse(raw) as { v: T | null };
      this.#metrics.cacheLookups.inc({ kind, result: 'hit' });
      return { value: (entry.v ?? undefined) as T };
    } catch (error) {
      this.#metrics.cacheLookups.inc({ kind, result: 'error' });
      this.#logger.debug({ err: errorCode(error), kind }, 'cache read failed; reading the catalog');
      return undefined;
    }
  }

  /** Fire and forget: the play does not wait for the cache write. */
  #write(kind: Kind, key: string, value: unknown, ttlSeconds: number): void {
    if (this.#redis.status !== 'ready' || ttlSeconds <= 0) return;
    this.#metrics
      .observe('redis', 'set', () => this.#redis.set(key, JSON.stringify({ v: value ?? null }), 'EX', ttlSeconds))
      .catch((error: unknown) => this.#logger.debug({ err: errorCode(error), kind }, 'cache write failed'));
  }
}

function errorCode(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 120) : 'unknown';
}
