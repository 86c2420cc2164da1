// The "server" half of the Consul double: catalog, check states as the
// servers see them, KV, sessions, and the Raft-like index that blocking
// queries wait on. Agents (agent.ts) write into it; the HTTP API and DNS read
// from it. Raw HTTP shapes follow shared/fixtures/consul.
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { formatGoDuration } from './go-json.ts';

export type CheckStatus = 'passing' | 'warning' | 'critical';
export const DATACENTER = 'dc1';

export interface NodeRecord {
  readonly id: string;
  readonly name: string;
  address: string;
  meta: Record<string, string>;
  createIndex: number;
  modifyIndex: number;
}

export interface TaggedAddress {
  address: string;
  port: number;
}

export interface ServiceRecord {
  readonly node: string;
  readonly id: string;
  name: string;
  kind: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string>;
  taggedAddresses: Record<string, TaggedAddress>;
  weights: { passing: number; warning: number };
  enableTagOverride: boolean;
  createIndex: number;
  modifyIndex: number;
}

export interface CheckDefinition {
  intervalMs: number;
  timeoutMs: number;
  deregisterCriticalServiceAfterMs: number;
  http: string;
  header: Record<string, string[]> | null;
  method: string;
  body: string;
  tlsServerName: string;
  tlsSkipVerify: boolean;
  tcp: string;
  ttlMs: number;
}

export interface CheckRecord {
  readonly node: string;
  readonly checkId: string;
  name: string;
  /** As synced to the servers (catalog, health, DNS, sessions). */
  status: CheckStatus;
  output: string;
  /** As the local agent sees it (/v1/agent/checks): output-only changes reach the servers late. */
  localStatus: CheckStatus;
  localOutput: string;
  notes: string;
  serviceId: string;
  serviceName: string;
  type: string;
  definition: CheckDefinition;
  createIndex: number;
  modifyIndex: number;
}

export interface KvEntry {
  readonly key: string;
  value: Buffer;
  flags: number;
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly lockDelayMs: number;
  readonly behavior: 'release' | 'delete';
  readonly ttl: string;
  readonly ttlMs: number;
  readonly nodeChecks: string[];
  readonly serviceChecks: { ID: string; Namespace: string }[] | null;
  readonly createIndex: number;
  modifyIndex: number;
  expiresAt: number | null;
  timer: NodeJS.Timeout | null;
}

export type Table = 'nodes' | 'services' | 'checks' | 'kvs' | 'sessions';

export class ConsulError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export function emptyDefinition(): CheckDefinition {
  return {
    intervalMs: 0,
    timeoutMs: 0,
    deregisterCriticalServiceAfterMs: 0,
    http: '',
    header: null,
    method: '',
    body: '',
    tlsServerName: '',
    tlsSkipVerify: false,
    tcp: '',
    ttlMs: 0,
  };
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The fields that say which node, as the catalog and node endpoints both begin. */
function nodeIdentity(node: NodeRecord): Record<string, unknown> {
  return {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: DATACENTER,
    TaggedAddresses: nodeTaggedAddresses(node.address),
  };
}

function nodeTaggedAddresses(address: string): Record<string, string> {
  if (isIP(address) === 6) return { lan: address, lan_ipv6: address, wan: address, wan_ipv6: address };
  return { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
}

interface Waiter {
  readonly tables: readonly Table[];
  readonly wake: () => void;
}

export interface StoreOptions {
  readonly initialIndex?: number;
  /** Session TTL timers run at ttl × this (Consul's servers use 2). */
  readonly sessionTtlMultiplier?: number;
}

export class ConsulStore {
  readonly nodes = new Map<string, NodeRecord>();
  /** Key: `${node}\0${serviceId}`. */
  readonly services = new Map<string, ServiceRecord>();
  /** Key: `${node}\0${checkId}`. */
  readonly checks = new Map<string, CheckRecord>();
  readonly kv = new Map<string, KvEntry>();
  readonly sessions = new Map<string, SessionRecord>();
  /** Delete index per removed key, so a prefix's index never goes backwards. */
  readonly #tombstones = new Map<string, number>();
  /** Key → time before which no session may acquire it (lock-delay). */
  readonly #lockDelays = new Map<string, number>();
  readonly #tableIndex = new Map<Table, number>();
  readonly #waiters = new Set<Waiter>();
  readonly #sessionTtlMultiplier: number;
  #index: number;
  #closed = false;

  constructor(options: StoreOptions = {}) {
    this.#index = Math.max(1, Math.trunc(options.initialIndex ?? 1));
    this.#sessionTtlMultiplier = options.sessionTtlMultiplier ?? 2;
    for (const table of ['nodes', 'services', 'checks', 'kvs', 'sessions'] as const) this.#tableIndex.set(table, this.#index);
  }

  get index(): number {
    return this.#index;
  }

  tableIndex(...tables: Table[]): number {
    return Math.max(1, ...tables.map((t) => this.#tableIndex.get(t) ?? 1));
  }

  /** Starts a write: returns the new Raft index for every table it touches. */
  #bump(...tables: Table[]): number {
    this.#index++;
    for (const t of tables) this.#tableIndex.set(t, this.#index);
    for (const waiter of [...this.#waiters]) if (waiter.tables.some((t) => tables.includes(t))) waiter.wake();
    return this.#index;
  }

  /**
   * A blocking query: answers at once when `minIndex` is 0 or already behind,
   * else holds until one of `tables` changes and the result's index moves past
   * `minIndex`, or `waitMs` elapses (then answers with whatever is current).
   */
  async block<T>(
    tables: readonly Table[],
    minIndex: number,
    waitMs: number,
    compute: () => { index: number; value: T },
    signal?: AbortSignal,
  ): Promise<{ index: number; value: T }> {
    const deadline = Date.now() + waitMs;
    // Bounded: each pass either returns or waits for a change or the deadline.
    for (let pass = 0; pass < 100_000; pass++) {
      const result = compute();
      result.index = Math.max(1, result.index);
      if (minIndex <= 0 || result.index > minIndex || this.#closed || signal?.aborted === true) return result;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return result;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const waiter: Waiter = { tables, wake: done };
        const timer = setTimeout(done, remaining);
        this.#waiters.add(waiter);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    return compute();
  }

  /** Releases every held query and stops session timers. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.wake();
    for (const session of this.sessions.values()) if (session.timer !== null) clearTimeout(session.timer);
  }

  // -------------------------------------------------------------------------
  // Nodes

  upsertNode(name: string, address: string, meta: Record<string, string> = {}): NodeRecord {
    const existing = this.nodes.get(name);
    const index = this.#bump('nodes');
    if (existing !== undefined) {
      existing.address = address;
      existing.meta = { 'consul-network-segment': '', ...meta };
      existing.modifyIndex = index;
      return existing;
    }
    const node: NodeRecord = {
      id: randomUUID(),
      name,
      address,
      meta: { 'consul-network-segment': '', ...meta },
      createIndex: index,
      modifyIndex: index,
    };
    this.nodes.set(name, node);
    return node;
  }

  removeNode(name: string): void {
    if (!this.nodes.has(name)) return;
    this.#bump('nodes', 'services', 'checks');
    this.nodes.delete(name);
    for (const [key, service] of this.services) if (service.node === name) this.services.delete(key);
    for (const [key, check] of this.checks) if (check.node === name) this.checks.delete(key);
    for (const session of [...this.sessions.values()]) if (session.node === name) this.invalidateSession(session.id);
  }

  // -------------------------------------------------------------------------
  // Services and checks (written by agents)

  getService(node: string, id: string): ServiceRecord | undefined {
    return this.services.get(`${node}\0${id}`);
  }

  putService(record: Omit<ServiceRecord, 'createIndex' | 'modifyIndex'>): ServiceRecord {
    return this.#put(this.services, 'services', `${record.node}\0${record.id}`, record);
  }

  deleteService(node: string, id: string): void {
    const key = `${node}\0${id}`;
    if (!this.services.has(key)) return;
    this.#bump('services', 'checks');
    this.services.delete(key);
    for (const check of [...this.checks.values()]) {
      if (check.node === node && check.serviceId === id) this.#deleteCheckRecord(check);
    }
  }

  getCheck(node: string, checkId: string): CheckRecord | undefined {
    return this.checks.get(`${node}\0${checkId}`);
  }

  putCheck(record: Omit<CheckRecord, 'createIndex' | 'modifyIndex'>): CheckRecord {
    const stored = this.#put(this.checks, 'checks', `${record.node}\0${record.checkId}`, record);
    if (stored.status === 'critical') this.#invalidateSessionsOnCheck(stored);
    return stored;
  }

  deleteCheck(node: string, checkId: string): void {
    const check = this.checks.get(`${node}\0${checkId}`);
    if (check === undefined) return;
    this.#bump('checks');
    this.#deleteCheckRecord(check);
  }

  /** Stores `record` under `key`, keeping the create index of the record it replaces. */
  #put<R extends { createIndex: number; modifyIndex: number }>(
    records: Map<string, R>,
    table: Table,
    key: string,
    record: Omit<R, 'createIndex' | 'modifyIndex'>,
  ): R {
    const existing = records.get(key);
    const index = this.#bump(table);
    const stored = { ...record, createIndex: existing?.createIndex ?? index, modifyIndex: index } as R;
    records.set(key, stored);
    return stored;
  }

  #deleteCheckRecord(check: CheckRecord): void {
    this.checks.delete(`${check.node}\0${check.checkId}`);
    // A session bound to a check is invalidated when the check goes away.
    this.#invalidateSessionsOnCheck(check);
  }

  /** Writes an agent's new check state through to the servers. */
  syncCheck(node: string, checkId: string, status: CheckStatus, output: string): void {
    const check = this.getCheck(node, checkId);
    if (check === undefined || (check.status === status && check.output === output)) return;
    check.status = status;
    check.output = output;
    check.modifyIndex = this.#bump('checks');
    if (status === 'critical') this.#invalidateSessionsOnCheck(check);
  }

  #invalidateSessionsOnCheck(check: CheckRecord): void {
    for (const session of [...this.sessions.values()]) {
      if (session.node !== check.node) continue;
      const bound = session.nodeChecks.includes(check.checkId) || (session.serviceChecks ?? []).some((c) => c.ID === check.checkId);
      if (bound) this.invalidateSession(session.id);
    }
  }

  // -------------------------------------------------------------------------
  // Raw HTTP renderings

  renderNode(node: NodeRecord): Record<string, unknown> {
    return {
      ...nodeIdentity(node),
      Meta: { ...node.meta },
      CreateIndex: node.createIndex,
      ModifyIndex: node.modifyIndex,
    };
  }

  renderService(service: ServiceRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (service.kind !== '') out['Kind'] = service.kind;
    Object.assign(out, {
      ID: service.id,
      Service: service.name,
      Tags: [...service.tags],
      Meta: { ...service.meta },
      Port: service.port,
      Address: service.address,
    });
    if (Object.keys(service.taggedAddresses).length > 0) {
      out['TaggedAddresses'] = Object.fromEntries(
        Object.entries(service.taggedAddresses).map(([k, a]) => [k, { address: a.address, port: a.port }]),
      );
    }
    Object.assign(out, {
      Weights: { Passing: service.weights.passing, Warning: service.weights.warning },
      EnableTagOverride: service.enableTagOverride,
      CreateIndex: service.createIndex,
      ModifyIndex: service.modifyIndex,
      Proxy: { MeshGateway: {}, Expose: {} },
      Connect: {},
    });
    return out;
  }

  /** Raw check JSON. `local` selects the agent's view instead of the servers'. */
  renderCheck(check: CheckRecord, local = false): Record<string, unknown> {
    const service = check.serviceId === '' ? undefined : this.getService(check.node, check.serviceId);
    const d = check.definition;
    // The servers' HealthCheckDefinition is all omitempty, unlike the api one the watch re-encodes.
    const definition: Record<string, unknown> = {};
    if (d.http !== '') definition['HTTP'] = d.http;
    if (d.tlsServerName !== '') definition['TLSServerName'] = d.tlsServerName;
    if (d.tlsSkipVerify) definition['TLSSkipVerify'] = true;
    if (d.header !== null) definition['Header'] = d.header;
    if (d.method !== '') definition['Method'] = d.method;
    if (d.body !== '') definition['Body'] = d.body;
    if (d.tcp !== '') definition['TCP'] = d.tcp;
    if (d.intervalMs > 0) definition['Interval'] = formatGoDuration(d.intervalMs);
    if (d.timeoutMs > 0) definition['Timeout'] = formatGoDuration(d.timeoutMs);
    if (d.deregisterCriticalServiceAfterMs > 0) {
      definition['DeregisterCriticalServiceAfter'] = formatGoDuration(d.deregisterCriticalServiceAfterMs);
    }
    return {
      Node: check.node,
      CheckID: check.checkId,
      Name: check.name,
      Status: local ? check.localStatus : check.status,
      Notes: check.notes,
      Output: local ? check.localOutput : check.output,
      ServiceID: check.serviceId,
      ServiceName: check.serviceName,
      ServiceTags: service === undefined ? [] : [...service.tags],
      Type: check.type,
      Interval: d.intervalMs > 0 ? formatGoDuration(d.intervalMs) : '',
      Timeout: d.timeoutMs > 0 ? formatGoDuration(d.timeoutMs) : '',
      ExposedPort: 0,
      Definition: definition,
      CreateIndex: check.createIndex,
      ModifyIndex: check.modifyIndex,
    };
  }

  /** Instances of a service, sorted as the state store returns them (node, then service id). */
  serviceInstances(name: string): ServiceRecord[] {
    return [...this.services.values()]
      .filter((s) => s.name === name && this.nodes.has(s.node))
      .sort((a, b) => byString(a.node, b.node) || byString(a.id, b.id));
  }

  /** Node-level checks first, then the instance's own, each group by check id (the state store's index order). */
  instanceChecks(service: ServiceRecord): CheckRecord[] {
    const all = [...this.checks.values()].filter((c) => c.node === service.node);
    const nodeLevel = all.filter((c) => c.serviceId === '').sort((a, b) => byString(a.checkId, b.checkId));
    const own = all.filter((c) => c.serviceId === service.id).sort((a, b) => byString(a.checkId, b.checkId));
    return [...nodeLevel, ...own];
  }

  healthServiceEntries(name: string): { service: ServiceRecord; node: NodeRecord; checks: CheckRecord[] }[] {
    return this.serviceInstances(name).map((service) => ({
      service,
      node: this.nodes.get(service.node)!,
      checks: this.instanceChecks(service),
    }));
  }

  renderCatalogService(service: ServiceRecord): Record<string, unknown> {
    const node = this.nodes.get(service.node)!;
    return {
      ...nodeIdentity(node),
      NodeMeta: { ...node.meta },
      ServiceKind: service.kind,
      ServiceID: service.id,
      ServiceName: service.name,
      ServiceTags: [...service.tags],
      ServiceAddress: service.address,
      ServiceTaggedAddresses: Object.fromEntries(
        Object.entries(service.taggedAddresses).map(([k, a]) => [k, { address: a.address, port: a.port }]),
      ),
      ServiceWeights: { Passing: service.weights.passing, Warning: service.weights.warning },
      ServiceMeta: { ...service.meta },
      ServicePort: service.port,
      ServiceEnableTagOverride: service.enableTagOverride,
      ServiceProxy: {
        DestinationServiceName: '',
        DestinationServiceID: '',
        LocalServiceAddress: '',
        LocalServicePort: 0,
        Config: null,
        Upstreams: null,
      },
      ServiceConnect: { Native: false, Proxy: null },
      CreateIndex: service.createIndex,
      ModifyIndex: service.modifyIndex,
    };
  }

  // -------------------------------------------------------------------------
  // KV

  kvIndexForKey(key: string): number {
    return this.kv.get(key)?.modifyIndex ?? this.tableIndex('kvs');
  }

  /** Highest ModifyIndex under a prefix, counting deletions; the table index when nothing was ever there. */
  kvIndexForPrefix(prefix: string): number {
    let max = 0;
    for (const entry of this.kv.values()) if (entry.key.startsWith(prefix)) max = Math.max(max, entry.modifyIndex);
    for (const [key, index] of this.#tombstones) if (key.startsWith(prefix)) max = Math.max(max, index);
    return max > 0 ? max : this.tableIndex('kvs');
  }

  kvList(prefix: string): KvEntry[] {
    return [...this.kv.values()].filter((e) => e.key.startsWith(prefix)).sort((a, b) => byString(a.key, b.key));
  }

  renderKv(entry: KvEntry): Record<string, unknown> {
    const out: Record<string, unknown> = {
      LockIndex: entry.lockIndex,
      Key: entry.key,
      Flags: entry.flags,
      Value: entry.value.length === 0 ? null : entry.value.toString('base64'),
      CreateIndex: entry.createIndex,
      ModifyIndex: entry.modifyIndex,
    };
    if (entry.session !== '') out['Session'] = entry.session;
    return out;
  }

  kvPut(key: string, value: Buffer, options: { flags?: number; cas?: number; acquire?: string; release?: string }): boolean {
    const existing = this.kv.get(key);
    if (options.cas !== undefined) {
      if (options.cas === 0 && existing !== undefined) return false;
      if (options.cas > 0 && (existing === undefined || existing.modifyIndex !== options.cas)) return false;
    }
    let session = existing?.session ?? '';
    let lockIndex = existing?.lockIndex ?? 0;
    if (options.acquire !== undefined) {
      this.#requireSession(options.acquire);
      if (existing !== undefined && existing.session !== '') {
        if (existing.session !== options.acquire) return false;
        // The holder re-acquiring only updates the value.
      } else {
        const delayedUntil = this.#lockDelays.get(key);
        if (delayedUntil !== undefined && Date.now() < delayedUntil) return false;
        session = options.acquire;
        lockIndex++;
      }
    } else if (options.release !== undefined) {
      this.#requireSession(options.release);
      if (existing === undefined || existing.session !== options.release) return false;
      session = '';
    }
    const index = this.#bump('kvs');
    this.kv.set(key, {
      key,
      value,
      flags: options.flags ?? existing?.flags ?? 0,
      session,
      lockIndex,
      createIndex: existing?.createIndex ?? index,
      modifyIndex: index,
    });
    this.#tombstones.delete(key);
    return true;
  }

  kvDelete(key: string, options: { recurse?: boolean; cas?: number }): boolean {
    if (options.recurse === true) {
      const doomed = this.kvList(key);
      if (doomed.length === 0) return true;
      const index = this.#bump('kvs');
      for (const entry of doomed) {
        this.kv.delete(entry.key);
        this.#tombstones.set(entry.key, index);
      }
      return true;
    }
    const existing = this.kv.get(key);
    if (options.cas !== undefined && (existing === undefined || existing.modifyIndex !== options.cas)) return false;
    if (existing === undefined) return true;
    const index = this.#bump('kvs');
    this.kv.delete(key);
    this.#tombstones.set(key, index);
    return true;
  }

  // -------------------------------------------------------------------------
  // Sessions

  #requireSession(id: string): SessionRecord {
    const session = this.sessions.get(id);
    if (session === undefined) throw new ConsulError(500, `invalid session "${id}"`);
    return session;
  }

  createSession(spec: {
    name: string;
    node: string;
    lockDelayMs: number;
    behavior: 'release' | 'delete';
    ttl: string;
    ttlMs: number;
    nodeChecks: string[];
    serviceChecks: { ID: string; Namespace: string }[] | null;
  }): SessionRecord {
    if (!this.nodes.has(spec.node)) throw new ConsulError(500, `Missing node registration`);
    for (const checkId of [...spec.nodeChecks, ...(spec.serviceChecks ?? []).map((c) => c.ID)]) {
      const check = this.getCheck(spec.node, checkId);
      if (check === undefined) throw new ConsulError(500, `Missing check '${checkId}' registration`);
      if (check.status === 'critical') throw new ConsulError(500, `Check '${checkId}' is in critical state`);
    }
    const index = this.#bump('sessions');
    const session: SessionRecord = { ...spec, id: randomUUID(), createIndex: index, modifyIndex: index, expiresAt: null, timer: null };
    this.sessions.set(session.id, session);
    this.#armSessionTtl(session);
    return session;
  }

  #armSessionTtl(session: SessionRecord): void {
    if (session.timer !== null) clearTimeout(session.timer);
    if (session.ttlMs <= 0) return;
    const after = session.ttlMs * this.#sessionTtlMultiplier;
    session.expiresAt = Date.now() + after;
    session.timer = setTimeout(() => this.invalidateSession(session.id), after);
    session.timer.unref();
  }

  renewSession(id: string): SessionRecord | undefined {
    const session = this.sessions.get(id);
    if (session !== undefined) this.#armSessionTtl(session);
    return session;
  }

  renderSession(session: SessionRecord): Record<string, unknown> {
    return {
      ID: session.id,
      Name: session.name,
      Node: session.node,
      LockDelay: Math.round(session.lockDelayMs * 1e6),
      Behavior: session.behavior,
      TTL: session.ttl,
      NodeChecks: [...session.nodeChecks],
      ServiceChecks: session.serviceChecks === null ? null : session.serviceChecks.map((c) => ({ ...c })),
      CreateIndex: session.createIndex,
      ModifyIndex: session.modifyIndex,
    };
  }

  /** Destroy, TTL expiry, a bound check going critical, node removal: all end here. Idempotent. */
  invalidateSession(id: string): void {
    const session = this.sessions.get(id);
    if (session === undefined) return;
    if (session.timer !== null) clearTimeout(session.timer);
    const held = [...this.kv.values()].filter((e) => e.session === id);
    const index = this.#bump('sessions', ...(held.length > 0 ? (['kvs'] as const) : []));
    this.sessions.delete(id);
    const delayUntil = Date.now() + session.lockDelayMs;
    for (const entry of held) {
      if (session.lockDelayMs > 0) this.#lockDelays.set(entry.key, delayUntil);
      if (session.behavior === 'delete') {
        this.kv.delete(entry.key);
        this.#tombstones.set(entry.key, index);
      } else {
        entry.session = '';
        entry.modifyIndex = index;
      }
    }
  }
}
