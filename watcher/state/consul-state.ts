// Everything the watcher keeps in Consul: the exclusion list, the status on-call engineers read,
// and the session lock. Only the documented HTTP API, through the shared Consul client, so it runs
// unchanged against a real agent.
import { errorOfKind } from '../../common/cli/errors.ts';
import type { ConsulClient } from '../../common/consul/client.ts';
import type { ConsulTlsSettings } from '../../common/consul/connection.ts';
import { printable, printableJson } from '../../common/printable.ts';
import { consulClient } from '../consul-client.ts';
import type { Registry } from '../registry/registry.ts';

export interface ConsulSettings {
  /** `host:port` or `http(s)://host:port`, as CONSUL_HTTP_ADDR. */
  address: string;
  tls?: ConsulTlsSettings | undefined;
  token: string | undefined;
  kvPrefix: string;
  timeoutMs: number;
}

export interface Exclusion {
  node: string;
  reason: string;
  by: string;
  at: string;
  /**
   * The value is not the watcher's JSON: someone excluded the node by hand
   * (`consul kv put st-api/dns/excluded/api-node-5 maintenance`). It still keeps the node out; its
   * text is the reason.
   */
  handWritten?: true;
}

/** Written by hand rather than by `watcher exclude`: shown as the exclusion's `by`. */
export const HAND_WRITTEN = 'hand-written KV value';
const MAX_REASON = 200;

/** What `st-api/dns/status` holds: one screen an on-call engineer reads in the Consul UI. */
export interface RunStatus {
  lastRun: string;
  command: string;
  result: string;
  message: string;
  consulIndex: number | null;
  /** The newest Consul index whose state reached DNS; older invocations never roll back past it. */
  appliedIndex: number | null;
  /** When a run last changed DNS (ISO time); null before the first change (and absent in statuses written before it existed). */
  lastChange: string | null;
  /** Fewer eligible nodes than minHealthy. */
  belowFloor: boolean;
  /** The floor keeps non-eligible nodes in DNS (keptByFloor). */
  floorEngaged: boolean;
  published: string[];
  eligible: string[];
  excluded: string[];
  /** Excluded by a value that is not the watcher's JSON (written by hand): still out of DNS; fix the value to say who and why. */
  handWrittenExclusions: string[];
  keptByFloor: string[];
  /** Registrations (or one of their addresses) left out: Route53 would refuse them, or they must never be published (loopback, link-local…). */
  skipped: { node: string; serviceId: string; reason: string }[];
  changes: { create: number; upsert: number; delete: number; deferredDeletes: number };
  route53Calls: number;
}

export class KvValueError extends errorOfKind('KvValueError', 'bad-input') {}

export class ConsulState implements Registry {
  readonly #consul: ConsulClient;
  readonly #settings: ConsulSettings;

  constructor(settings: ConsulSettings) {
    this.#settings = settings;
    this.#consul = consulClient(settings);
  }

  get #excludedPrefix(): string {
    return `${this.#settings.kvPrefix}/excluded/`;
  }

  async exclusions(): Promise<Exclusion[]> {
    const items = await this.#consul.kvList(this.#excludedPrefix);
    return items
      .filter((item) => item.Key.length > this.#excludedPrefix.length)
      .map((item) => exclusionOf(item.Key.slice(this.#excludedPrefix.length), item.Value));
  }

  async exclude(exclusion: Exclusion): Promise<void> {
    const { node, ...value } = exclusion;
    // Escaped JSON: the reason is shown as text in the Consul UI.
    await this.#consul.kvSet(`${this.#excludedPrefix}${node}`, printableJson(value, 2));
  }

  /** Returns whether the node was excluded. */
  async include(node: string): Promise<boolean> {
    const key = `${this.#excludedPrefix}${node}`;
    if ((await this.#consul.kvGet(key)) === undefined) return false;
    await this.#consul.kvDelete(key);
    return true;
  }

  async readStatus(): Promise<RunStatus | undefined> {
    const item = await this.#consul.kvGet(`${this.#settings.kvPrefix}/status`);
    if (item === undefined) return undefined;
    return parseJson(item.Value, item.Key) as RunStatus;
  }

  async writeStatus(status: RunStatus): Promise<void> {
    // Node names from Consul reach the Consul UI's text view: escaped JSON, the same value once parsed.
    await this.#consul.kvSet(`${this.#settings.kvPrefix}/status`, `${printableJson(status, 2)}\n`);
  }

  /**
   * Holds `<prefix>/lock` through a session while `work` runs, so handlers on several agents take
   * turns instead of fighting. The session has Consul's minimum TTL and is renewed every TTL/2 while
   * this process lives (as api/lock.go's RenewPeriodic does), so a holder killed mid-run frees the
   * lock within 2 × TTL + lock-delay: Consul invalidates an unrenewed session between TTL and 2 × TTL.
   * `work` calls `lock.assertHeld()` before each write: once a renew fails, or none succeeded for
   * nearly a TTL, the session may be gone and another holder writing, so the run stops.
   */
  async withLock<T>(holder: string, waitMs: number, work: (lock: HeldLock) => Promise<T>): Promise<T> {
    const key = `${this.#settings.kvPrefix}/lock`;
    const created = Date.now();
    const session = await this.#consul.sessionCreate({
      name: `st-api dns watcher (${holder})`,
      ttl: `${SESSION_TTL_MS / 1000}s`,
      behavior: 'release',
      lockDelay: LOCK_DELAY,
    });
    // Renewed from the start: waiting for the lock may outlast the TTL.
    const keeper = new SessionKeeper(session, created, (id) => this.#consul.sessionRenew(id));
    try {
      const deadline = Date.now() + waitMs;
      let index: number | undefined;
      for (let attempt = 0; ; attempt += 1) {
        keeper.assertHeld();
        const acquired = await this.#consul.kvAcquire(key, JSON.stringify({ holder, since: new Date().toISOString() }), session);
        if (acquired) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0 || attempt >= 100) throw new LockTimeoutError(`another watcher held ${key} for more than ${waitMs} ms`);
        // Block until the lock key changes (released), at most the time left.
        index = await this.#consul.kvWait(key, index === undefined ? undefined : { index, waitMs: remaining });
      }
      try {
        return await work(keeper);
      } finally {
        await this.#consul.kvRelease(key, '', session).catch(() => undefined);
      }
    } finally {
      keeper.stop();
      await this.#consul.sessionDestroy(session).catch(() => undefined);
    }
  }
}

/** Consul's minimum session TTL (Consul docs, "Sessions": 10s to 86400s). */
export const SESSION_TTL_MS = 10_000;
/** After a holder dies, the lock stays closed this long (Consul's lock-delay), so its last write lands first. */
const LOCK_DELAY = '1s';
/**
 * A write starts only if the last successful renew was sent less than TTL minus this ago: Consul
 * keeps a session at least TTL after a renew, and this leaves time for the write itself.
 */
const RENEW_MARGIN_MS = 2000;

export interface HeldLock {
  /** Throws LockLostError when the session may no longer hold the lock; call before every write. */
  assertHeld(): void;
}

class SessionKeeper implements HeldLock {
  readonly #session: string;
  readonly #renew: (id: string) => Promise<unknown>;
  /** When the last successful renew (or the create) was sent: Consul's TTL counts from its arrival, later. */
  #renewedAt: number;
  #lost: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(session: string, createdAt: number, renew: (id: string) => Promise<unknown>) {
    this.#session = session;
    this.#renewedAt = createdAt;
    this.#renew = renew;
    this.#schedule();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#renewOnce(), SESSION_TTL_MS / 2);
    this.#timer.unref();
  }

  async #renewOnce(): Promise<void> {
    const sent = Date.now();
    try {
      // 404 (session already invalidated) rejects like any other failure.
      await this.#renew(this.#session);
      this.#renewedAt = sent;
    } catch (error) {
      this.#lost ??= `renewing the lock's Consul session failed (${error instanceof Error ? error.message : String(error)})`;
      return;
    }
    if (!this.#stopped) this.#schedule();
  }

  assertHeld(): void {
    if (this.#lost !== undefined) throw new LockLostError(`${this.#lost}: stopping before another write`);
    const since = Date.now() - this.#renewedAt;
    if (since > SESSION_TTL_MS - RENEW_MARGIN_MS)
      throw new LockLostError(
        `the lock's Consul session was last renewed ${since} ms ago (TTL ${SESSION_TTL_MS} ms): stopping before another write`,
      );
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** The lock may have passed to another watcher (its session not renewed in time): nothing more was written. */
export class LockLostError extends errorOfKind('LockLostError', 'transient') {}

export class LockTimeoutError extends errorOfKind('LockTimeoutError', 'transient') {}

/**
 * An exclusion never stops a run, whatever its value: a value that is not `{reason, by, at}` JSON
 * counts as an exclusion written by hand (someone meant to take that node out), with its text as
 * the reason, escaped and cut so it reads safely in `status` and the Consul UI.
 */
function exclusionOf(node: string, raw: string | null): Exclusion {
  try {
    const value: unknown = JSON.parse(raw ?? '');
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const fields = value as Record<string, unknown>;
      return { node, reason: field(fields['reason']), by: field(fields['by']), at: field(fields['at']) };
    }
  } catch {
    // not JSON: written by hand
  }
  const text = printable((raw ?? '').trim());
  return {
    node,
    reason: text === '' ? '(no reason given)' : text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text,
    by: HAND_WRITTEN,
    at: '',
    handWritten: true,
  };
}

function field(value: unknown): string {
  if (value === undefined || value === null) return '';
  return printable(typeof value === 'string' ? value : JSON.stringify(value));
}

function parseJson(value: string | null, key: string): unknown {
  if (value === null || value === '') return null;
  try {
    return JSON.parse(value);
  } catch {
    throw new KvValueError(`Consul KV ${key} is not JSON; fix or delete it`);
  }
}
