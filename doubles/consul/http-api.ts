// The Consul HTTP API (/v1/...) served by every simulated agent. Agent
// endpoints act on that agent's node; everything else reads the shared store,
// as a client agent forwards to the servers. Only what the project uses is
// implemented; anything else answers 404 so a gap shows up loudly in a test.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { compileFilter } from './filter.ts';
import { parseGoDuration } from './go-json.ts';
import { field, type Agent } from './agent.ts';
import { ConsulError, DATACENTER, type ConsulStore, type Table } from './store.ts';

export interface CallLogEntry {
  readonly at: number;
  /** Node name of the agent that served the call. */
  readonly agent: string;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** From X-Consul-Token, `Authorization: Bearer`, or `?token=`; null when none was sent. */
  readonly token: string | null;
  /** Served on the agent's HTTPS port (`tls`), not its HTTP one. */
  readonly tls: boolean;
  status: number;
  durationMs: number;
}

export interface ApiContext {
  readonly store: ConsulStore;
  readonly agent: Agent;
  /** Bounded log; the double trims it. */
  readonly log: (entry: CallLogEntry) => void;
  /** Caps `?wait=` (Consul: 10m); tests may lower the default. */
  readonly defaultWaitMs: number;
  readonly maxWaitMs: number;
  readonly leader: string;
}

const MAX_KV_BYTES = 512 * 1024;
const MAX_JSON_BYTES = 4 * 1024 * 1024;
const SESSION_TTL_MIN_MS = 10_000;
const SESSION_TTL_MAX_MS = 86_400_000;
const MAX_LOCK_DELAY_MS = 60_000;

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new BodyTooLarge(`Request body(${size} bytes) too large, max size: ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (error) {
    throw new ConsulError(400, `Request decode failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Consul's bool query parsing: present and empty means true. */
function queryBool(query: URLSearchParams, name: string): boolean {
  if (!query.has(name)) return false;
  const value = (query.get(name) ?? '').toLowerCase();
  if (value === '' || value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new ConsulError(400, `Invalid value for ?${name}`);
}

function queryUint(query: URLSearchParams, name: string, what: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  if (!/^\d+$/.test(raw)) throw new ConsulError(400, `Invalid ${what}`);
  return Number(raw);
}

function tokenOf(req: IncomingMessage, query: URLSearchParams): string | null {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '');
  return query.get('token');
}

export function createApiHandler(ctx: ApiContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://consul.invalid');
    const entry: CallLogEntry = {
      at: started,
      agent: ctx.agent.node,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      token: tokenOf(req, url.searchParams),
      tls: 'encrypted' in req.socket && req.socket.encrypted === true,
      status: 0,
      durationMs: 0,
    };
    ctx.log(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.durationMs = Date.now() - started;
    });
    // A client that gives up on a blocking query must free its waiter.
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    route(ctx, req, res, url, abort.signal).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof ConsulError) sendText(res, error.status, error.message);
      else if (error instanceof BodyTooLarge) sendText(res, 413, error.message);
      else sendText(res, 500, error instanceof Error ? error.message : String(error));
    });
  };
}

function requireMethod(req: IncomingMessage, ...allowed: string[]): void {
  if (!allowed.includes(req.method ?? '')) throw new ConsulError(405, `method ${req.method ?? ''} not allowed`);
}

async function route(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> {
  const { store, agent } = ctx;
  const query = url.searchParams;
  const path = url.pathname;
  const dc = query.get('dc');
  if (dc !== null && dc !== '' && dc !== DATACENTER) throw new ConsulError(500, 'No path to datacenter');
  const rest = (prefix: string): string | null => {
    if (!path.startsWith(prefix)) return null;
    try {
      return decodeURIComponent(path.slice(prefix.length));
    } catch {
      throw new ConsulError(400, 'Invalid URL path encoding');
    }
  };

  /** Runs a blocking read and writes it with the query-meta headers. */
  const blocking = async (tables: Table[], compute: () => { index: number; value: unknown }): Promise<void> => {
    requireMethod(req, 'GET');
    const { minIndex, waitMs } = blockingParams(ctx, query);
    const result = await store.block(tables, minIndex, waitMs, compute, signal);
    sendJson(res, 200, result.value, queryMeta(result.index));
  };

  // ---------------------------------------------------------------- status
  if (path === '/v1/status/leader') return sendJson(res, 200, ctx.leader);
  if (path === '/v1/status/peers') return sendJson(res, 200, [ctx.leader]);

  // ----------------------------------------------------------------- agent
  if (path === '/v1/agent/self') {
    const node = store.nodes.get(agent.node);
    return sendJson(res, 200, {
      Config: { Datacenter: DATACENTER, NodeName: agent.node, NodeID: node?.id ?? '', Server: false, Version: '1.20.0' },
      Member: { Name: agent.node, Addr: node?.address ?? '', Port: 8301, Status: 1 },
      Meta: { ...(node?.meta ?? {}) },
    });
  }
  if (path === '/v1/agent/members') {
    return sendJson(
      res,
      200,
      [...store.nodes.values()].map((n) => ({
        Name: n.name,
        Addr: n.address,
        Port: 8301,
        Tags: { dc: DATACENTER, role: 'node' },
        Status: store.getCheck(n.name, 'serfHealth')?.status === 'critical' ? 4 : 1,
      })),
    );
  }
  if (path === '/v1/agent/services') {
    requireMethod(req, 'GET');
    const filterText = query.get('filter');
    const predicate = filterText === null || filterText === '' ? null : compileFilter(filterText);
    const out: Record<string, unknown> = {};
    for (const service of agent.services()) {
      const rendered: Record<string, unknown> = { ...store.renderService(service), Datacenter: DATACENTER };
      delete rendered['CreateIndex'];
      delete rendered['ModifyIndex'];
      if (predicate === null || predicate(rendered)) out[service.id] = rendered;
    }
    return sendJson(res, 200, out);
  }
  let id = rest('/v1/agent/service/register');
  if (id === '') {
    requireMethod(req, 'PUT');
    const body = parseJson(await readBody(req, MAX_JSON_BYTES));
    agent.registerService(body, queryBool(query, 'replace-existing-checks'));
    return sendText(res, 200, '');
  }
  if ((id = rest('/v1/agent/service/deregister/')) !== null) {
    requireMethod(req, 'PUT');
    agent.deregisterService(id);
    return sendText(res, 200, '');
  }
  if ((id = rest('/v1/agent/service/maintenance/')) !== null) {
    requireMethod(req, 'PUT');
    if (!query.has('enable')) throw new ConsulError(400, 'Missing value for enable');
    agent.serviceMaintenance(id, queryBool(query, 'enable'), query.get('reason') ?? '');
    return sendText(res, 200, '');
  }
  if (path === '/v1/agent/maintenance') {
    requireMethod(req, 'PUT');
    if (!query.has('enable')) throw new ConsulError(400, 'Missing value for enable');
    agent.nodeMaintenance(queryBool(query, 'enable'), query.get('reason') ?? '');
    return sendText(res, 200, '');
  }
  if ((id = rest('/v1/agent/service/')) !== null && id !== '' && !id.includes('/')) {
    requireMethod(req, 'GET');
    const service = store.getService(agent.node, id);
    if (service === undefined) throw new ConsulError(404, `unknown service ID: ${id}`);
    return sendJson(res, 200, { ...store.renderService(service), Datacenter: DATACENTER });
  }
  if (path === '/v1/agent/checks') {
    requireMethod(req, 'GET');
    const out: Record<string, unknown> = {};
    for (const check of agent.checks()) {
      const rendered = store.renderCheck(check, true);
      delete rendered['CreateIndex'];
      delete rendered['ModifyIndex'];
      out[check.checkId] = rendered;
    }
    return sendJson(res, 200, out);
  }
  if (path === '/v1/agent/check/register') {
    requireMethod(req, 'PUT');
    agent.registerCheck(parseJson(await readBody(req, MAX_JSON_BYTES)));
    return sendText(res, 200, '');
  }
  if ((id = rest('/v1/agent/check/deregister/')) !== null) {
    requireMethod(req, 'PUT');
    agent.deregisterCheck(id);
    return sendText(res, 200, '');
  }
  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    if ((id = rest(`/v1/agent/check/${verb}/`)) !== null) {
      requireMethod(req, 'PUT');
      agent.updateTtl(id, status, query.get('note') ?? '');
      return sendText(res, 200, '');
    }
  }
  if ((id = rest('/v1/agent/check/update/')) !== null) {
    requireMethod(req, 'PUT');
    const body = parseJson(await readBody(req, MAX_JSON_BYTES));
    const status = field(body, 'Status');
    if (status !== 'passing' && status !== 'warning' && status !== 'critical') {
      throw new ConsulError(400, `Invalid check status: "${String(status)}"`);
    }
    const output = field(body, 'Output');
    agent.updateTtl(id, status, typeof output === 'string' ? output : '');
    return sendText(res, 200, '');
  }

  // ---------------------------------------------------------------- health
  const filterOf = (): ((v: unknown) => boolean) | null => {
    const text = query.get('filter');
    return text === null || text === '' ? null : compileFilter(text);
  };
  if ((id = rest('/v1/health/service/')) !== null) {
    const name = id;
    const passing = queryBool(query, 'passing');
    const tags = query.getAll('tag');
    const predicate = filterOf();
    return blocking(['nodes', 'services', 'checks'], () => ({
      index: store.tableIndex('nodes', 'services', 'checks'),
      value: store
        .healthServiceEntries(name)
        .filter((e) => tags.every((t) => e.service.tags.includes(t)))
        .filter((e) => !passing || e.checks.every((c) => c.status === 'passing'))
        .map((e) => ({
          Node: store.renderNode(e.node),
          Service: store.renderService(e.service),
          Checks: e.checks.map((c) => store.renderCheck(c)),
        }))
        .filter((e) => predicate === null || predicate(e)),
    }));
  }
  if ((id = rest('/v1/health/checks/')) !== null) {
    const name = id;
    const predicate = filterOf();
    return blocking(['checks'], () => ({
      index: store.tableIndex('checks'),
      value: store
        .serviceInstances(name)
        .flatMap((s) => store.instanceChecks(s).filter((c) => c.serviceId === s.id))
        .map((c) => store.renderCheck(c))
        .filter((c) => predicate === null || predicate(c)),
    }));
  }
  if ((id = rest('/v1/health/node/')) !== null) {
    const node = id;
    return blocking(['checks'], () => ({
      index: store.tableIndex('checks'),
      value: [...store.checks.values()]
        .filter((c) => c.node === node)
        .sort((a, b) => (a.checkId < b.checkId ? -1 : 1))
        .map((c) => store.renderCheck(c)),
    }));
  }
  if ((id = rest('/v1/health/state/')) !== null) {
    const state = id;
    if (!['any', 'passing', 'warning', 'critical'].includes(state)) throw new ConsulError(400, `Invalid state: ${state}`);
    return blocking(['checks'], () => ({
      index: store.tableIndex('checks'),
      value: [...store.checks.values()].filter((c) => state === 'any' || c.status === state).map((c) => store.renderCheck(c)),
    }));
  }

  // --------------------------------------------------------------- catalog
  if (path === '/v1/catalog/datacenters') return sendJson(res, 200, [DATACENTER]);
  if (path === '/v1/catalog/services') {
    return blocking(['services'], () => {
      const out: Record<string, string[]> = {};
      for (const service of [...store.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const tags = (out[service.name] ??= []);
        for (const tag of service.tags) if (!tags.includes(tag)) tags.push(tag);
      }
      return { index: store.tableIndex('services'), value: out };
    });
  }
  if (path === '/v1/catalog/nodes') {
    const predicate = filterOf();
    return blocking(['nodes'], () => ({
      index: store.tableIndex('nodes'),
      value: [...store.nodes.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((n) => store.renderNode(n))
        .filter((n) => predicate === null || predicate(n)),
    }));
  }
  if ((id = rest('/v1/catalog/service/')) !== null) {
    const name = id;
    const tags = query.getAll('tag');
    const predicate = filterOf();
    return blocking(['nodes', 'services'], () => ({
      index: store.tableIndex('nodes', 'services'),
      value: store
        .serviceInstances(name)
        .filter((s) => tags.every((t) => s.tags.includes(t)))
        .map((s) => store.renderCatalogService(s))
        .filter((s) => predicate === null || predicate(s)),
    }));
  }

  // -------------------------------------------------------------------- kv
  if ((id = rest('/v1/kv/')) !== null) return kv(ctx, req, res, query, id, signal);

  // -------------------------------------------------------------- sessions
  if (path === '/v1/session/create') {
    requireMethod(req, 'PUT');
    const body = parseJson(await readBody(req, MAX_JSON_BYTES));
    const session = createSession(ctx, body);
    return sendJson(res, 200, { ID: session });
  }
  if ((id = rest('/v1/session/destroy/')) !== null) {
    requireMethod(req, 'PUT');
    store.invalidateSession(id);
    return sendJson(res, 200, true);
  }
  if ((id = rest('/v1/session/renew/')) !== null) {
    requireMethod(req, 'PUT');
    const session = store.renewSession(id);
    if (session === undefined) throw new ConsulError(404, `Session id '${id}' not found`);
    return sendJson(res, 200, [store.renderSession(session)]);
  }
  if ((id = rest('/v1/session/info/')) !== null) {
    const sid = id;
    return blocking(['sessions'], () => {
      const session = store.sessions.get(sid);
      return { index: store.tableIndex('sessions'), value: session === undefined ? [] : [store.renderSession(session)] };
    });
  }
  if ((id = rest('/v1/session/node/')) !== null) {
    const node = id;
    return blocking(['sessions'], () => ({
      index: store.tableIndex('sessions'),
      value: [...store.sessions.values()].filter((s) => s.node === node).map((s) => store.renderSession(s)),
    }));
  }
  if (path === '/v1/session/list') {
    return blocking(['sessions'], () => ({
      index: store.tableIndex('sessions'),
      value: [...store.sessions.values()].map((s) => store.renderSession(s)),
    }));
  }

  throw new ConsulError(404, `Not implemented by the Consul double: ${req.method ?? ''} ${path}`);
}

function blockingParams(ctx: ApiContext, query: URLSearchParams): { minIndex: number; waitMs: number } {
  const minIndex = queryUint(query, 'index', 'index') ?? 0;
  const waitRaw = query.get('wait');
  let waitMs = ctx.defaultWaitMs;
  if (waitRaw !== null && waitRaw !== '') {
    const parsed = parseGoDuration(waitRaw);
    if (parsed === null) throw new ConsulError(400, 'Invalid wait time');
    waitMs = parsed;
  }
  waitMs = Math.min(waitMs, ctx.maxWaitMs);
  // Consul adds up to wait/16 so that many clients do not wake together.
  return { minIndex, waitMs: waitMs + Math.random() * (waitMs / 16) };
}

function queryMeta(index: number): Record<string, string> {
  return { 'X-Consul-Index': String(Math.max(1, index)), 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
}

const asText = (v: unknown): string => (typeof v === 'string' ? v : '');

function createSession(ctx: ApiContext, body: unknown): string {
  const ttlRaw = field(body, 'TTL');
  const ttl = typeof ttlRaw === 'string' ? ttlRaw : '';
  let ttlMs = 0;
  if (ttl !== '') {
    const parsed = parseGoDuration(ttl);
    if (parsed === null || parsed < SESSION_TTL_MIN_MS || parsed > SESSION_TTL_MAX_MS) {
      throw new ConsulError(400, `Invalid Session TTL '${ttl}', must be between [10s=24h0m0s]`);
    }
    ttlMs = parsed;
  }
  const behaviorRaw = field(body, 'Behavior');
  const behavior = behaviorRaw === undefined || behaviorRaw === '' ? 'release' : behaviorRaw;
  if (behavior !== 'release' && behavior !== 'delete') throw new ConsulError(400, `Invalid Behavior setting '${JSON.stringify(behavior)}'`);
  const lockDelayRaw = field(body, 'LockDelay');
  let lockDelayMs = 15_000;
  if (typeof lockDelayRaw === 'number') {
    // Consul reads small numbers as seconds, larger ones as nanoseconds.
    lockDelayMs = lockDelayRaw < 1000 ? lockDelayRaw * 1000 : lockDelayRaw / 1e6;
  } else if (typeof lockDelayRaw === 'string' && lockDelayRaw !== '') {
    const parsed = parseGoDuration(lockDelayRaw);
    if (parsed === null) throw new ConsulError(400, `Request decode failed: invalid LockDelay "${lockDelayRaw}"`);
    lockDelayMs = parsed;
  }
  lockDelayMs = Math.min(Math.max(0, lockDelayMs), MAX_LOCK_DELAY_MS);
  const nodeChecksRaw = field(body, 'NodeChecks') ?? field(body, 'Checks');
  const nodeChecks = Array.isArray(nodeChecksRaw) ? nodeChecksRaw.map(String) : ['serfHealth'];
  const serviceChecksRaw = field(body, 'ServiceChecks');
  const serviceChecks = Array.isArray(serviceChecksRaw)
    ? serviceChecksRaw.map((c) => ({ ID: asText(field(c, 'ID')), Namespace: asText(field(c, 'Namespace')) }))
    : null;
  const nodeRaw = field(body, 'Node');
  const name = field(body, 'Name');
  return ctx.store.createSession({
    name: typeof name === 'string' ? name : '',
    node: typeof nodeRaw === 'string' && nodeRaw !== '' ? nodeRaw : ctx.agent.node,
    lockDelayMs,
    behavior,
    ttl,
    ttlMs,
    nodeChecks,
    serviceChecks,
  }).id;
}

async function kv(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  key: string,
  signal: AbortSignal,
): Promise<void> {
  const { store } = ctx;
  const method = req.method ?? 'GET';
  if (method === 'GET') {
    if (query.has('keys')) {
      const separator = query.get('separator') ?? '';
      const found = await holdKv(ctx, query, signal, () => {
        const keys: string[] = [];
        for (const entry of store.kvList(key)) {
          let k = entry.key;
          if (separator !== '') {
            const at = k.indexOf(separator, key.length);
            if (at >= 0) k = k.slice(0, at + separator.length);
          }
          if (keys.at(-1) !== k) keys.push(k);
        }
        return { index: store.kvIndexForPrefix(key), value: keys };
      });
      if (found.value.length === 0) return sendText(res, 404, '', queryMeta(found.index));
      return sendJson(res, 200, found.value, queryMeta(found.index));
    }
    if (query.has('recurse')) {
      const found = await holdKv(ctx, query, signal, () => ({ index: store.kvIndexForPrefix(key), value: store.kvList(key) }));
      if (found.value.length === 0) return sendText(res, 404, '', queryMeta(found.index));
      return sendJson(
        res,
        200,
        found.value.map((e) => store.renderKv(e)),
        queryMeta(found.index),
      );
    }
    const found = await holdKv(ctx, query, signal, () => ({ index: store.kvIndexForKey(key), value: store.kv.get(key) }));
    if (found.value === undefined) return sendText(res, 404, '', queryMeta(found.index));
    if (query.has('raw')) {
      res.writeHead(200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
        'Content-Length': found.value.value.length,
        ...queryMeta(found.index),
      });
      res.end(found.value.value);
      return;
    }
    return sendJson(res, 200, [store.renderKv(found.value)], queryMeta(found.index));
  }
  if (method === 'PUT') {
    if (key === '') throw new ConsulError(400, 'Missing key name');
    const value = await readBody(req, MAX_KV_BYTES);
    const cas = queryUint(query, 'cas', 'CAS index');
    const flags = queryUint(query, 'flags', 'flags');
    const acquire = query.get('acquire');
    const release = query.get('release');
    const ok = store.kvPut(key, value, {
      ...(cas === undefined ? {} : { cas }),
      ...(flags === undefined ? {} : { flags }),
      ...(acquire === null ? {} : { acquire }),
      ...(release === null ? {} : { release }),
    });
    return sendJson(res, 200, ok);
  }
  if (method === 'DELETE') {
    const cas = queryUint(query, 'cas', 'CAS index');
    const ok = store.kvDelete(key, { recurse: query.has('recurse'), ...(cas === undefined ? {} : { cas }) });
    return sendJson(res, 200, ok);
  }
  throw new ConsulError(405, `method ${method} not allowed`);
}

async function holdKv<T>(
  ctx: ApiContext,
  query: URLSearchParams,
  signal: AbortSignal,
  compute: () => { index: number; value: T },
): Promise<{ index: number; value: T }> {
  const { minIndex, waitMs } = blockingParams(ctx, query);
  return await ctx.store.block(['kvs'], minIndex, waitMs, compute, signal);
}
