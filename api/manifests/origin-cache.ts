// The origin's manifests, fetched by st-api for tokenized-manifest delivery and cached per title.
// This sits on the playback path, so it is bounded in every direction: one fixed origin per CDN
// from configuration (the URL is never taken from a request: no open proxy, no redirects), catalog
// paths only, a size cap, a fetch deadline, a bounded number of entries, one fetch per manifest at a
// time however many viewers ask, and a byte budget for the whole cache. When the origin is down, a copy fetched within `staleSeconds`
// still answers; without one the viewer gets 503 with Retry-After.
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics.ts';
import type { CompiledManifest } from './tokenize.ts';

export interface ManifestOriginOptions {
  fetchTimeoutMs: number;
  maxBytes: number;
  /** A cached copy younger than this is served without asking the origin. */
  freshSeconds: number;
  /** A cached copy younger than this is served when the origin cannot be reached. */
  staleSeconds: number;
  maxEntries: number;
  /** All cached manifests together; the least recently used go first. */
  maxCacheBytes: number;
}

export type OriginFailure = 'not-found' | 'unavailable' | 'invalid';

export class ManifestOriginError extends Error {
  override name = 'ManifestOriginError';
  readonly kind: OriginFailure;
  constructor(kind: OriginFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

interface Entry {
  manifest: CompiledManifest;
  fetchedAt: number;
  bytes: number;
}

export interface ManifestRequest {
  cdn: string;
  /** The fixed origin from configuration + a catalog path checked by the route. */
  url: string;
  compile: (text: string) => CompiledManifest;
}

export interface OriginHealth {
  cdn: string;
  /** The last fetch failed and nothing has succeeded since: `timeout`, `http-502`, `refused`, … */
  failing?: string;
}

export class ManifestCache {
  readonly #options: ManifestOriginOptions;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #entries: LRUCache<string, Entry>;
  readonly #inflight = new Map<string, Promise<Entry>>();
  readonly #failing = new Map<string, string>();

  constructor(options: ManifestOriginOptions, metrics: Metrics, now: () => number) {
    this.#options = options;
    this.#metrics = metrics;
    this.#now = now;
    this.#entries = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxCacheBytes,
      sizeCalculation: (entry) => Math.max(1, entry.bytes),
    });
  }

  async get(request: ManifestRequest): Promise<{ manifest: CompiledManifest; stale: boolean }> {
    const key = `${request.cdn} ${request.url}`;
    const cached = this.#entries.get(key);
    const age = cached === undefined ? Infinity : this.#now() - cached.fetchedAt;
    if (cached !== undefined && age < this.#options.freshSeconds * 1000) {
      this.#metrics.manifestCache.inc({ cdn: request.cdn, result: 'hit' });
      return { manifest: cached.manifest, stale: false };
    }
    try {
      const entry = await this.#fetchOnce(key, request);
      this.#metrics.manifestCache.inc({ cdn: request.cdn, result: 'miss' });
      return { manifest: entry.manifest, stale: false };
    } catch (error) {
      const unavailable = error instanceof ManifestOriginError && error.kind === 'unavailable';
      if (unavailable && cached !== undefined && age < this.#options.staleSeconds * 1000) {
        this.#metrics.manifestCache.inc({ cdn: request.cdn, result: 'stale' });
        return { manifest: cached.manifest, stale: true };
      }
      if (error instanceof ManifestOriginError && error.kind === 'not-found') this.#entries.delete(key);
      throw error;
    }
  }

  /** Per CDN, whether its origin is failing right now: the health line and the on-call's first question. */
  health(cdns: readonly string[]): OriginHealth[] {
    return cdns.map((cdn) => {
      const failing = this.#failing.get(cdn);
      return failing === undefined ? { cdn } : { cdn, failing };
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  #fetchOnce(key: string, request: ManifestRequest): Promise<Entry> {
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#fetch(request)
        .then(({ manifest, bytes }) => {
          const entry = { manifest, fetchedAt: this.#now(), bytes };
          this.#entries.set(key, entry);
          return entry;
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #fetch(request: ManifestRequest): Promise<{ manifest: CompiledManifest; bytes: number }> {
    const stop = this.#metrics.manifestOriginDuration.startTimer({ cdn: request.cdn });
    let result = 'ok';
    try {
      const text = await this.#download(request.url);
      const manifest = request.compile(text);
      this.#failing.delete(request.cdn);
      return { manifest, bytes: Buffer.byteLength(text) };
    } catch (error) {
      const failure =
        error instanceof ManifestOriginError
          ? error
          : new ManifestOriginError('invalid', `the origin's answer is not a manifest (${(error as Error).message})`, { cause: error });
      result = failure.kind;
      if (failure.kind !== 'not-found') this.#failing.set(request.cdn, shortReason(failure));
      throw failure;
    } finally {
      stop({ result });
    }
  }

  async #download(url: string): Promise<string> {
    let response: Response;
    try {
      // Redirects are never followed: the origin is fixed by configuration, not by what it answers.
      response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(this.#options.fetchTimeoutMs) });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new ManifestOriginError(
        'unavailable',
        timedOut ? `timeout after ${this.#options.fetchTimeoutMs} ms` : `unreachable (${causeCode(error)})`,
        { cause: error },
      );
    }
    if (response.status === 404 || response.status === 410) {
      await response.body?.cancel();
      throw new ManifestOriginError('not-found', `http-${response.status}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      // 5xx and 429 pass (retry, serve a cached copy meanwhile); anything else — a redirect, 401, 403 —
      // is an origin that is misconfigured for st-api, which retrying will not mend.
      const transient = response.status >= 500 || response.status === 429;
      throw new ManifestOriginError(transient ? 'unavailable' : 'invalid', `http-${response.status}`);
    }
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > this.#options.maxBytes) {
      await response.body?.cancel();
      throw new ManifestOriginError('invalid', `larger than ${this.#options.maxBytes} bytes`);
    }
    return this.#readBounded(response);
  }

  async #readBounded(response: Response): Promise<string> {
    const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
    if (reader === undefined) return '';
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > this.#options.maxBytes) {
          await reader.cancel();
          throw new ManifestOriginError('invalid', `larger than ${this.#options.maxBytes} bytes`);
        }
        chunks.push(value);
      }
    } catch (error) {
      if (error instanceof ManifestOriginError) throw error;
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new ManifestOriginError(
        'unavailable',
        timedOut ? `timeout after ${this.#options.fetchTimeoutMs} ms` : `read failed (${causeCode(error)})`,
        { cause: error },
      );
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

function causeCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === 'string' ? cause.code.toLowerCase() : 'network';
}

function shortReason(error: ManifestOriginError): string {
  if (error.message.startsWith('timeout')) return 'timeout';
  if (error.message.startsWith('http-')) return error.message;
  if (error.message.startsWith('unreachable')) return /\((.*)\)/.exec(error.message)?.[1] ?? 'unreachable';
  return error.kind;
}
