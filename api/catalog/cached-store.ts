// Short-lived Redis cache in front of the catalog. Redis is optional: any Redis failure is a miss,
// so a play is answered from MySQL after at most one bounded wait, never failed because of Redis.
//
// Per play: content and device class are usually in process memory (a few seconds); the content
// (if not) and the viewer's rights are read with one MGET; on a miss the catalog answers both in
// one query, and both are written back in one pipeline the play does not wait for.
import { TtlMap } from '../../common/ttl-map.ts';
import { withTimeout } from '../../common/with-timeout.ts';
import type { CatalogStore, Content, DeviceClass, PlayData, Right } from './types.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { redisStuck, type RedisSource } from '../redis/client.ts';

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
 * Content and device classes also stay a few seconds in process memory: they change rarely and
 * every play needs them. Rights never do: a new purchase must show at once, from any node.
 */
const LOCAL_SECONDS = 5;
const LOCAL_MAX_ENTRIES = 20_000;

/** What Redis holds: `{"v": value}`, where null stands for "not found" (a cached denial). */
interface Entry<T> {
  v: T | null;
}

export class CachedCatalogStore implements CatalogStore {
  readonly #origin: CatalogStore;
  readonly #redis: RedisSource;
  readonly #ttls: CacheTtls;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #local: TtlMap<string, NonNullable<unknown>>;

  constructor(deps: { origin: CatalogStore; redis: RedisSource; ttls: CacheTtls; metrics: Metrics; logger: Logger; now: () => number }) {
    this.#origin = deps.origin;
    this.#redis = deps.redis;
    this.#ttls = deps.ttls;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#now = deps.now;
    this.#local = new TtlMap({ maxEntries: LOCAL_MAX_ENTRIES, now: deps.now });
  }

  async playData(userId: string, contentId: string): Promise<PlayData> {
    const contentKey = `${PREFIX}:content:${contentId}`;
    const rightsKey = `${PREFIX}:rights:${userId}:${contentId}`;
    const local = this.#localGet<Content>(contentKey);
    const [cachedRights, cachedContent] = await this.#read<[Right[], Content]>(
      ['rights', 'content'],
      local === undefined ? [rightsKey, contentKey] : [rightsKey],
    );
    const content = local ?? (cachedContent === undefined ? undefined : { found: cachedContent.v ?? undefined });
    if (cachedRights !== undefined && content !== undefined) {
      if (content.found !== undefined) this.#localSet(contentKey, content.found);
      return { content: content.found, rights: cachedRights.v ?? [] };
    }

    const fresh = await this.#origin.playData(userId, contentId);
    const writes: [string, unknown, number][] = [[rightsKey, fresh.rights, this.#rightsTtl(fresh.rights)]];
    if (content === undefined)
      writes.push([contentKey, fresh.content ?? null, fresh.content === undefined ? this.#ttls.denialSeconds : this.#ttls.contentSeconds]);
    this.#write(writes);
    if (fresh.content !== undefined) this.#localSet(contentKey, fresh.content);
    return fresh;
  }

  async deviceClass(name: string): Promise<DeviceClass | undefined> {
    const key = `${PREFIX}:device:${name}`;
    const local = this.#localGet<DeviceClass>(key);
    if (local !== undefined) return local.found;
    const [cached] = await this.#read<[DeviceClass]>(['device_class'], [key]);
    const device = cached === undefined ? await this.#origin.deviceClass(name) : (cached.v ?? undefined);
    if (cached === undefined)
      this.#write([[key, device ?? null, device === undefined ? this.#ttls.denialSeconds : this.#ttls.deviceClassSeconds]]);
    if (device !== undefined) this.#localSet(key, device);
    return device;
  }

  /** Granted rights are kept longer than denials, so a purchase made a moment ago is seen at once. */
  #rightsTtl(rights: readonly Right[]): number {
    const now = this.#now();
    const grants = rights.some((right) => right.expiresAt === null || right.expiresAt > now);
    return grants ? this.#ttls.rightsSeconds : this.#ttls.denialSeconds;
  }

  /** Only found values are kept locally; "not found" is asked again next time. */
  #localGet<T>(key: string): { found: T } | undefined {
    const value = this.#local.get(key);
    return value === undefined ? undefined : { found: value as T };
  }

  #localSet(key: string, value: NonNullable<unknown>): void {
    this.#local.set(key, value, LOCAL_SECONDS * 1000);
  }

  /** One MGET; each key's entry, or undefined for a miss. Any Redis failure reads as misses. */
  async #read<T extends unknown[]>(kinds: readonly Kind[], keys: readonly string[]): Promise<{ [I in keyof T]: Entry<T[I]> | undefined }> {
    type Result = { [I in keyof T]: Entry<T[I]> | undefined };
    const misses = keys.map(() => undefined) as Result;
    const count = (index: number, result: 'hit' | 'miss' | 'error') =>
      this.#metrics.cacheLookups.inc({ kind: kinds[index] ?? 'content', result });
    // Asked per call: with discovery the connection changes when the master moves.
    const redis = this.#redis.client();
    if (redis === undefined) {
      keys.forEach((_key, index) => count(index, 'error'));
      return misses;
    }
    try {
      const raws = await this.#metrics.observe('redis', 'mget', () => withTimeout(redis.mget(...keys), this.#redis.deadlineMs, redisStuck));
      return raws.map((raw, index) => {
        count(index, raw === null ? 'miss' : 'hit');
        return raw === null ? undefined : (JSON.parse(raw) as Entry<unknown>);
      }) as Result;
    } catch (error) {
      keys.forEach((_key, index) => count(index, 'error'));
      this.#redis.reportError(error, redis);
      this.#logger.debug({ err: errorText(error) }, 'cache read failed; reading the catalog');
      return misses;
    }
  }

  /** Fire and forget, one pipeline: the play does not wait for the cache write. */
  #write(entries: readonly [key: string, value: unknown, ttlSeconds: number][]): void {
    const redis = this.#redis.client();
    if (redis === undefined) return;
    const pipeline = redis.pipeline();
    for (const [key, value, ttlSeconds] of entries) pipeline.set(key, JSON.stringify({ v: value ?? null }), 'EX', ttlSeconds);
    const failed = (error: unknown): void => {
      // A READONLY reply here is often the first sign that the master moved.
      this.#redis.reportError(error, redis);
      this.#logger.debug({ err: errorText(error) }, 'cache write failed');
    };
    this.#metrics
      .observe('redis', 'set', () => pipeline.exec())
      // exec() resolves even when commands fail: each reply carries its own error.
      .then((replies) => {
        const error = replies?.find(([replyError]) => replyError !== null)?.[0];
        if (error !== undefined && error !== null) failed(error);
      })
      .catch(failed);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 120) : 'unknown';
}
