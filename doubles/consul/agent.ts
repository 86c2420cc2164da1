// One node's local Consul agent: service and check registration, the check
// runners (HTTP checks really run, TTL checks really expire), maintenance
// mode, and the anti-entropy rule that status changes reach the servers at
// once while output-only changes wait for check_update_interval.
// Behaviour follows hashicorp/consul agent/agent.go and agent/checks/check.go.
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { parseGoDuration } from './go-json.ts';
import {
  ConsulError,
  emptyDefinition,
  type CheckDefinition,
  type CheckRecord,
  type CheckStatus,
  type ConsulStore,
  type ServiceRecord,
  type TaggedAddress,
} from './store.ts';

export interface AgentOptions {
  /** Consul's check_update_interval: how late output-only changes reach the servers. 0 = at once. */
  readonly checkUpdateIntervalMs: number;
  /** Random delay before an HTTP check's first run, up to its interval (as the agent does); else one interval. */
  readonly checkStagger: boolean;
  /** Floor for DeregisterCriticalServiceAfter (Consul: 1m). */
  readonly deregisterMinimumMs: number;
  /** How often critical services are reaped (Consul: 30s). */
  readonly reapIntervalMs: number;
  /** Add lan_ipv4/wan_ipv4 (or _ipv6) service tagged addresses, as agents do for an IP Service.Address. */
  readonly defaultServiceTaggedAddresses: boolean;
  /**
   * `enable_agent_tls_for_checks = true` with the agent's `tls` CA (ca_file, PEM): HTTPS checks trust
   * this CA only. Absent: the flag is off and they trust the system's roots, as Go's default client
   * does (tlsutil OutgoingTLSConfigForCheck).
   */
  readonly tlsForChecks?: { readonly caPem: string };
}

const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
const DEFAULT_OUTPUT_MAX_SIZE = 4096;
const SERVICE_MAINTENANCE_PREFIX = '_service_maintenance:';
const NODE_MAINTENANCE_ID = '_node_maintenance';
const DEFAULT_SERVICE_MAINTENANCE_REASON =
  'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
const DEFAULT_NODE_MAINTENANCE_REASON = 'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';

type Raw = Record<string, unknown>;

// The agent decodes with Go's case-insensitive field matching.
export function field(raw: unknown, name: string): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const obj = raw as Raw;
  if (name in obj) return obj[name];
  const lower = name.toLowerCase().replace(/_/g, '');
  for (const key of Object.keys(obj)) if (key.toLowerCase().replace(/_/g, '') === lower) return obj[key];
  return undefined;
}

const asString = (v: unknown): string => (typeof v === 'string' ? v : '');
const asInt = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : fallback);
const isObject = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

function asStringMap(v: unknown): Record<string, string> {
  if (!isObject(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined');
}

function durationMs(v: unknown, what: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const ms = parseGoDuration(v);
  if (ms === null || ms < 0) throw new ConsulError(400, `Request decode failed: time: invalid duration "${show(v)}" (${what})`);
  return ms;
}

function isStatus(v: unknown): v is CheckStatus {
  return v === 'passing' || v === 'warning' || v === 'critical';
}

/** Per-check runtime state that is not part of the catalog. */
interface CheckRuntime {
  outputMaxSize: number;
  successBeforePassing: number;
  failuresBeforeWarning: number;
  failuresBeforeCritical: number;
  successCounter: number;
  failuresCounter: number;
  timer: NodeJS.Timeout | null;
  abort: AbortController | null;
  /** TTL checks: the last output set through pass/warn/fail/update. */
  lastTtlOutput: string;
  deferredSync: NodeJS.Timeout | null;
  criticalSince: number | null;
}

export class Agent {
  readonly node: string;
  readonly #store: ConsulStore;
  readonly #options: AgentOptions;
  readonly #runtime = new Map<string, CheckRuntime>();
  readonly #reaper: NodeJS.Timeout;
  #stopped = false;

  constructor(node: string, store: ConsulStore, options: AgentOptions) {
    this.node = node;
    this.#store = store;
    this.#options = options;
    this.#reaper = setInterval(() => this.#reap(), Math.max(10, options.reapIntervalMs));
    this.#reaper.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#reaper);
    for (const runtime of this.#runtime.values()) this.#stopRuntime(runtime);
    this.#runtime.clear();
  }

  // -------------------------------------------------------------------------
  // Services

  registerService(body: unknown, replaceExistingChecks: boolean): void {
    if (!isObject(body)) throw new ConsulError(400, 'Request decode failed: body must be a JSON object');
    const name = asString(field(body, 'Name'));
    if (name === '') throw new ConsulError(400, 'Missing service name');
    const id = asString(field(body, 'ID')) || name;
    const port = asInt(field(body, 'Port'));
    if (port < 0 || port > 65535) throw new ConsulError(400, `Invalid service port: ${port}`);
    const address = asString(field(body, 'Address'));
    const weightsRaw = field(body, 'Weights');
    const weights = isObject(weightsRaw)
      ? { passing: asInt(field(weightsRaw, 'Passing'), 1), warning: asInt(field(weightsRaw, 'Warning'), 1) }
      : { passing: 1, warning: 1 };
    if (weights.passing < 1) throw new ConsulError(400, 'Passing must be greater than 0');

    const taggedAddresses: Record<string, TaggedAddress> = {};
    const taggedRaw = field(body, 'TaggedAddresses');
    if (isObject(taggedRaw)) {
      for (const [key, value] of Object.entries(taggedRaw)) {
        taggedAddresses[key] = { address: asString(field(value, 'Address')), port: asInt(field(value, 'Port')) };
      }
    }
    if (this.#options.defaultServiceTaggedAddresses) {
      const family = isIP(address);
      const suffix = family === 4 ? 'ipv4' : family === 6 ? 'ipv6' : null;
      if (suffix !== null) {
        taggedAddresses[`lan_${suffix}`] ??= { address, port };
        taggedAddresses[`wan_${suffix}`] ??= { address, port };
      }
    }

    const checkDefs: unknown[] = [];
    const single = field(body, 'Check');
    if (isObject(single)) checkDefs.push(single);
    const many = field(body, 'Checks');
    if (Array.isArray(many)) checkDefs.push(...many.filter(isObject));
    // Validate every check before touching state, as the agent does.
    const parsed = checkDefs.map((def, i) =>
      this.#parseCheck(def, {
        defaultId: checkDefs.length === 1 ? `service:${id}` : `service:${id}:${i + 1}`,
        defaultName: `Service '${name}' check`,
      }),
    );

    const tagsRaw = field(body, 'Tags');
    const tags = Array.isArray(tagsRaw) ? tagsRaw.filter((t): t is string => typeof t === 'string') : [];
    const service = this.#store.putService({
      node: this.node,
      id,
      name,
      kind: asString(field(body, 'Kind')),
      tags,
      address,
      port,
      meta: asStringMap(field(body, 'Meta')),
      taggedAddresses,
      weights,
      enableTagOverride: field(body, 'EnableTagOverride') === true,
    });

    const keep = new Set(parsed.map((p) => p.checkId));
    if (replaceExistingChecks) {
      for (const check of [...this.#store.checks.values()]) {
        if (
          check.node === this.node &&
          check.serviceId === id &&
          !keep.has(check.checkId) &&
          !check.checkId.startsWith(SERVICE_MAINTENANCE_PREFIX)
        ) {
          this.deregisterCheck(check.checkId);
        }
      }
    }
    for (const p of parsed) this.#addCheck(p, service);
  }

  deregisterService(id: string): void {
    // A no-op for an unknown id, as documented.
    const service = this.#store.getService(this.node, id);
    if (service === undefined) return;
    for (const check of [...this.#store.checks.values()]) {
      if (check.node === this.node && check.serviceId === id) this.#dropRuntime(check.checkId);
    }
    this.#store.deleteService(this.node, id);
  }

  serviceMaintenance(id: string, enable: boolean, reason: string): void {
    const service = this.#store.getService(this.node, id);
    if (service === undefined) throw new ConsulError(404, `Unknown service ID "${id}"`);
    this.#maintenance(enable, {
      checkId: `${SERVICE_MAINTENANCE_PREFIX}${id}`,
      name: 'Service Maintenance Mode',
      notes: reason || DEFAULT_SERVICE_MAINTENANCE_REASON,
      serviceId: id,
      serviceName: service.name,
    });
  }

  nodeMaintenance(enable: boolean, reason: string): void {
    this.#maintenance(enable, {
      checkId: NODE_MAINTENANCE_ID,
      name: 'Node Maintenance Mode',
      notes: reason || DEFAULT_NODE_MAINTENANCE_REASON,
      serviceId: '',
      serviceName: '',
    });
  }

  /** Maintenance mode is a critical check of its own: added on enable (once), removed on disable. */
  #maintenance(enable: boolean, check: { checkId: string; name: string; notes: string; serviceId: string; serviceName: string }): void {
    if (!enable) {
      this.deregisterCheck(check.checkId);
      return;
    }
    if (this.#store.getCheck(this.node, check.checkId) !== undefined) return;
    this.#store.putCheck({
      node: this.node,
      checkId: check.checkId,
      name: check.name,
      status: 'critical',
      output: '',
      localStatus: 'critical',
      localOutput: '',
      notes: check.notes,
      serviceId: check.serviceId,
      serviceName: check.serviceName,
      type: 'maintenance',
      definition: emptyDefinition(),
    });
  }

  services(): ServiceRecord[] {
    return [...this.#store.services.values()].filter((s) => s.node === this.node);
  }

  checks(): CheckRecord[] {
    return [...this.#store.checks.values()].filter((c) => c.node === this.node && c.checkId !== 'serfHealth');
  }

  // -------------------------------------------------------------------------
  // Checks

  registerCheck(body: unknown): void {
    if (!isObject(body)) throw new ConsulError(400, 'Request decode failed: body must be a JSON object');
    const name = asString(field(body, 'Name'));
    if (name === '') throw new ConsulError(400, 'Missing check name');
    const serviceId = asString(field(body, 'ServiceID'));
    let service: ServiceRecord | undefined;
    if (serviceId !== '') {
      service = this.#store.getService(this.node, serviceId);
      if (service === undefined) throw new ConsulError(400, `ServiceID "${serviceId}" does not exist`);
    }
    const parsed = this.#parseCheck(body, { defaultId: name, defaultName: name, idField: 'ID' });
    this.#addCheck(parsed, service);
  }

  deregisterCheck(checkId: string): void {
    this.#dropRuntime(checkId);
    this.#store.deleteCheck(this.node, checkId);
  }

  /** PUT /v1/agent/check/pass|warn|fail and /update: TTL checks only. */
  updateTtl(checkId: string, status: CheckStatus, output: string): void {
    const check = this.#store.getCheck(this.node, checkId);
    const runtime = this.#runtime.get(checkId);
    if (check === undefined || runtime === undefined) {
      throw new ConsulError(404, `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`);
    }
    if (check.definition.ttlMs <= 0) throw new ConsulError(500, `CheckID "${checkId}" does not have associated TTL`);
    let text = output;
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > runtime.outputMaxSize) {
      text = `${bytes.subarray(0, runtime.outputMaxSize).toString('utf8')} ... (captured ${runtime.outputMaxSize} of ${bytes.length} bytes)`;
    }
    runtime.lastTtlOutput = text;
    this.#armTtl(check, runtime);
    this.#setLocal(check, status, text);
  }

  #parseCheck(def: unknown, defaults: { defaultId: string; defaultName: string; idField?: string }): ParsedCheck {
    const checkId = asString(field(def, 'CheckID')) || asString(field(def, defaults.idField ?? 'CheckID')) || defaults.defaultId;
    const name = asString(field(def, 'Name')) || defaults.defaultName;
    const definition: CheckDefinition = emptyDefinition();
    definition.ttlMs = durationMs(field(def, 'TTL'), 'TTL');
    definition.http = asString(field(def, 'HTTP'));
    definition.tcp = asString(field(def, 'TCP'));
    definition.intervalMs = durationMs(field(def, 'Interval'), 'Interval');
    definition.timeoutMs = durationMs(field(def, 'Timeout'), 'Timeout');
    definition.deregisterCriticalServiceAfterMs = durationMs(
      field(def, 'DeregisterCriticalServiceAfter'),
      'DeregisterCriticalServiceAfter',
    );
    definition.method = asString(field(def, 'Method'));
    definition.body = asString(field(def, 'Body'));
    definition.tlsServerName = asString(field(def, 'TLSServerName'));
    definition.tlsSkipVerify = field(def, 'TLSSkipVerify') === true;
    const header = field(def, 'Header');
    if (isObject(header)) {
      definition.header = Object.fromEntries(Object.entries(header).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : [String(v)]]));
    }
    let type: string;
    if (definition.ttlMs > 0) {
      type = 'ttl';
    } else if (definition.http !== '') {
      type = 'http';
      if (definition.intervalMs <= 0) throw new ConsulError(400, 'Invalid check: Interval must be > 0 for HTTP checks');
      try {
        new URL(definition.http);
      } catch {
        throw new ConsulError(400, `Invalid check: invalid HTTP URL "${definition.http}"`);
      }
    } else {
      // Script, TCP, gRPC… checks are not simulated: the project registers only HTTP and TTL checks.
      throw new ConsulError(
        400,
        'Invalid check: TTL must be > 0 for TTL checks, or HTTP and Interval must be set (the double runs only HTTP and TTL checks)',
      );
    }
    const statusRaw = field(def, 'Status');
    if (statusRaw !== undefined && statusRaw !== '' && !isStatus(statusRaw)) {
      throw new ConsulError(400, `Invalid check: Status must be passing, warning or critical, not "${show(statusRaw)}"`);
    }
    const failuresBeforeCritical = asInt(field(def, 'FailuresBeforeCritical'));
    return {
      checkId,
      name,
      definition,
      type,
      status: isStatus(statusRaw) ? statusRaw : null,
      notes: asString(field(def, 'Notes')),
      outputMaxSize: asInt(field(def, 'OutputMaxSize')) > 0 ? asInt(field(def, 'OutputMaxSize')) : DEFAULT_OUTPUT_MAX_SIZE,
      successBeforePassing: asInt(field(def, 'SuccessBeforePassing')),
      failuresBeforeCritical,
      failuresBeforeWarning: asInt(field(def, 'FailuresBeforeWarning'), failuresBeforeCritical),
    };
  }

  #addCheck(p: ParsedCheck, service: ServiceRecord | undefined): void {
    const existing = this.#store.getCheck(this.node, p.checkId);
    // Re-registering keeps the current state unless a Status is given: a
    // re-register (e.g. a tag change) must not flap the instance to critical.
    const status: CheckStatus = p.status ?? existing?.localStatus ?? 'critical';
    const output = p.status === null && existing !== undefined ? existing.localOutput : '';
    this.#dropRuntime(p.checkId);
    const check = this.#store.putCheck({
      node: this.node,
      checkId: p.checkId,
      name: p.name,
      status,
      output,
      localStatus: status,
      localOutput: output,
      notes: p.notes,
      serviceId: service?.id ?? '',
      serviceName: service?.name ?? '',
      type: p.type,
      definition: p.definition,
    });
    const runtime: CheckRuntime = {
      outputMaxSize: p.outputMaxSize,
      successBeforePassing: p.successBeforePassing,
      failuresBeforeWarning: p.failuresBeforeWarning,
      failuresBeforeCritical: p.failuresBeforeCritical,
      successCounter: 0,
      failuresCounter: 0,
      timer: null,
      abort: null,
      lastTtlOutput: '',
      deferredSync: null,
      criticalSince: status === 'critical' ? Date.now() : null,
    };
    this.#runtime.set(p.checkId, runtime);
    if (p.type === 'ttl') this.#armTtl(check, runtime);
    else if (p.type === 'http') this.#scheduleHttp(check, runtime, true);
  }

  #stopRuntime(runtime: CheckRuntime): void {
    if (runtime.timer !== null) clearTimeout(runtime.timer);
    if (runtime.deferredSync !== null) clearTimeout(runtime.deferredSync);
    runtime.abort?.abort();
    runtime.timer = null;
    runtime.deferredSync = null;
  }

  #dropRuntime(checkId: string): void {
    const runtime = this.#runtime.get(checkId);
    if (runtime === undefined) return;
    this.#stopRuntime(runtime);
    this.#runtime.delete(checkId);
  }

  #armTtl(check: CheckRecord, runtime: CheckRuntime): void {
    if (runtime.timer !== null) clearTimeout(runtime.timer);
    runtime.timer = setTimeout(() => {
      runtime.timer = null;
      if (this.#runtime.get(check.checkId) !== runtime) return;
      const output =
        runtime.lastTtlOutput === '' ? 'TTL expired' : `TTL expired (last output before timeout follows): ${runtime.lastTtlOutput}`;
      this.#setLocal(check, 'critical', output);
    }, check.definition.ttlMs);
    runtime.timer.unref();
  }

  #scheduleHttp(check: CheckRecord, runtime: CheckRuntime, first: boolean): void {
    if (this.#stopped || this.#runtime.get(check.checkId) !== runtime) return;
    const interval = check.definition.intervalMs;
    // Without the stagger the first run still waits one interval, so a new check is observably critical first.
    const delay = first && this.#options.checkStagger ? Math.random() * interval : interval;
    runtime.timer = setTimeout(() => {
      runtime.timer = null;
      void this.#runHttp(check, runtime).finally(() => this.#scheduleHttp(check, runtime, false));
    }, delay);
    runtime.timer.unref();
  }

  async #runHttp(check: CheckRecord, runtime: CheckRuntime): Promise<void> {
    const d = check.definition;
    const method = d.method === '' ? 'GET' : d.method.toUpperCase();
    const result = await httpProbe({
      url: d.http,
      method,
      header: d.header,
      body: d.body,
      timeoutMs: d.timeoutMs > 0 ? d.timeoutMs : DEFAULT_HTTP_TIMEOUT_MS,
      outputMaxSize: runtime.outputMaxSize,
      tlsSkipVerify: d.tlsSkipVerify,
      tlsServerName: d.tlsServerName,
      ...(this.#options.tlsForChecks === undefined ? {} : { caPem: this.#options.tlsForChecks.caPem }),
      onAbort: (controller) => {
        runtime.abort = controller;
      },
    });
    runtime.abort = null;
    if (this.#stopped || this.#runtime.get(check.checkId) !== runtime) return;
    // agent/checks StatusHandler: only enough consecutive results change the status (and output).
    if (result.status === 'passing' || result.status === 'warning') {
      runtime.successCounter++;
      runtime.failuresCounter = 0;
      if (runtime.successCounter >= runtime.successBeforePassing) this.#setLocal(check, result.status, result.output);
    } else {
      runtime.successCounter = 0;
      runtime.failuresCounter++;
      if (runtime.failuresCounter >= runtime.failuresBeforeCritical) this.#setLocal(check, 'critical', result.output);
      else if (runtime.failuresCounter >= runtime.failuresBeforeWarning) this.#setLocal(check, 'warning', result.output);
    }
  }

  /** The agent's local state changes; the servers learn of it now (status) or later (output only). */
  #setLocal(check: CheckRecord, status: CheckStatus, output: string): void {
    const runtime = this.#runtime.get(check.checkId);
    if (this.#store.getCheck(this.node, check.checkId) !== check) return;
    if (status === 'critical' && check.localStatus !== 'critical' && runtime !== undefined) runtime.criticalSince = Date.now();
    if (status !== 'critical' && runtime !== undefined) runtime.criticalSince = null;
    check.localStatus = status;
    check.localOutput = output;
    if (check.status !== status || this.#options.checkUpdateIntervalMs <= 0) {
      if (runtime?.deferredSync != null) {
        clearTimeout(runtime.deferredSync);
        runtime.deferredSync = null;
      }
      this.#store.syncCheck(this.node, check.checkId, status, output);
      return;
    }
    if (check.output === output || runtime === undefined || runtime.deferredSync !== null) return;
    runtime.deferredSync = setTimeout(() => {
      runtime.deferredSync = null;
      if (this.#store.getCheck(this.node, check.checkId) === check) {
        this.#store.syncCheck(this.node, check.checkId, check.localStatus, check.localOutput);
      }
    }, this.#options.checkUpdateIntervalMs);
    runtime.deferredSync.unref();
  }

  #reap(): void {
    const now = Date.now();
    for (const check of this.checks()) {
      const runtime = this.#runtime.get(check.checkId);
      const after = check.definition.deregisterCriticalServiceAfterMs;
      if (runtime?.criticalSince == null || after <= 0 || check.serviceId === '') continue;
      if (now - runtime.criticalSince > Math.max(after, this.#options.deregisterMinimumMs)) {
        this.deregisterService(check.serviceId);
      }
    }
  }
}

interface ParsedCheck {
  checkId: string;
  name: string;
  definition: CheckDefinition;
  type: string;
  status: CheckStatus | null;
  notes: string;
  outputMaxSize: number;
  successBeforePassing: number;
  failuresBeforeWarning: number;
  failuresBeforeCritical: number;
}

// ---------------------------------------------------------------------------
// One HTTP check run, as agent/checks/check.go CheckHTTP.check

export interface ProbeResult {
  readonly status: CheckStatus;
  readonly output: string;
}

/** Go's net/url error prefix: `Get "url": …`. */
function goUrlError(method: string, url: string, message: string): string {
  const op = method.slice(0, 1) + method.slice(1).toLowerCase();
  return `${op} "${url}": ${message}`;
}

function goTransportMessage(error: unknown, url: URL): string {
  const code = (error as { code?: unknown }).code;
  const host = url.port === '' ? `${url.hostname}:${url.protocol === 'https:' ? 443 : 80}` : url.host;
  // OpenSSL reads an HTTP answer as a TLS record of an unknown version (EPROTO on Node 20).
  if (url.protocol === 'https:' && error instanceof Error && /wrong version number/i.test(error.message))
    return 'http: server gave HTTP response to HTTPS client';
  switch (code) {
    case 'ECONNREFUSED':
      return `dial tcp ${host}: connect: connection refused`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    case 'ENOTFOUND':
      return `dial tcp: lookup ${url.hostname}: no such host`;
    case 'EHOSTUNREACH':
      return `dial tcp ${host}: connect: no route to host`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `${GO_VERIFY_PREFIX}x509: certificate signed by unknown authority`;
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return `${GO_VERIFY_PREFIX}x509: certificate has expired or is not yet valid`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `${GO_VERIFY_PREFIX}${goHostnameError(error as { host?: unknown; cert?: PeerCertificate })}`;
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** crypto/tls (Go ≥ 1.20) wraps every verification failure in this. */
const GO_VERIFY_PREFIX = 'tls: failed to verify certificate: ';

/** crypto/x509 HostnameError: the names (or, for an IP, the addresses) the certificate is valid for. */
function goHostnameError(error: { host?: unknown; cert?: PeerCertificate }): string {
  const host = typeof error.host === 'string' ? error.host : '';
  const sans = (error.cert?.subjectaltname ?? '').split(', ').filter((san) => san !== '');
  const wanted = isIP(host) === 0 ? 'DNS:' : 'IP Address:';
  const valid = sans.filter((san) => san.startsWith(wanted)).map((san) => san.slice(wanted.length));
  if (isIP(host) !== 0 && valid.length === 0) return `x509: cannot validate certificate for ${host} because it doesn't contain any IP SANs`;
  if (valid.length === 0) return `x509: certificate is not valid for any names, but wanted to match ${host}`;
  return `x509: certificate is valid for ${valid.join(', ')}, not ${host}`;
}

export async function httpProbe(options: {
  url: string;
  method: string;
  header: Record<string, string[]> | null;
  body: string;
  timeoutMs: number;
  outputMaxSize: number;
  tlsSkipVerify: boolean;
  /** The check's TLSServerName: SNI and the name verified, instead of the URL's host. */
  tlsServerName?: string;
  /** The agent's CA (enable_agent_tls_for_checks); absent: the system's roots. */
  caPem?: string;
  onAbort?: (controller: AbortController) => void;
}): Promise<ProbeResult> {
  const url = new URL(options.url);
  const controller = new AbortController();
  options.onAbort?.(controller);
  const headers: Record<string, string | string[]> = {
    'User-Agent': 'Consul Health Check',
    Accept: 'text/plain, text/*, */*',
    // The agent's transport disables keep-alives.
    Connection: 'close',
  };
  for (const [k, v] of Object.entries(options.header ?? {})) headers[k] = v;
  if (options.body !== '') headers['Content-Length'] = String(Buffer.byteLength(options.body));
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;

  return await new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      finish({
        status: 'critical',
        output: goUrlError(options.method, options.url, 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
      });
      controller.abort();
    }, options.timeoutMs);
    const req = request(
      url,
      {
        method: options.method,
        headers,
        agent: false,
        signal: controller.signal,
        ...(url.protocol === 'https:' ? httpsCheckOptions(url, options) : {}),
      },
      (res: IncomingMessage) => {
        // A circular buffer: only the last outputMaxSize bytes of the body are kept.
        let kept = Buffer.alloc(0);
        res.on('data', (chunk: Buffer) => {
          kept = Buffer.concat([kept, chunk]);
          if (kept.length > options.outputMaxSize) kept = kept.subarray(kept.length - options.outputMaxSize);
        });
        res.on('error', () => undefined);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          const reason = res.statusMessage ?? STATUS_CODES[code] ?? '';
          const status: CheckStatus = code >= 200 && code <= 299 ? 'passing' : code === 429 ? 'warning' : 'critical';
          finish({
            status,
            output: `HTTP ${options.method} ${options.url}: ${code} ${reason} Output: ${kept.toString('utf8')}`,
          });
        });
      },
    );
    req.on('error', (error) => {
      finish({ status: 'critical', output: goUrlError(options.method, options.url, goTransportMessage(error, url)) });
    });
    req.end(options.body === '' ? undefined : options.body);
  });
}

/** Go's tls.Config for a check: ServerName (when set) is both SNI and the name verified; an IP is verified, never sent as SNI. */
function httpsCheckOptions(url: URL, options: { tlsSkipVerify: boolean; tlsServerName?: string; caPem?: string }) {
  const verifiedName =
    options.tlsServerName !== undefined && options.tlsServerName !== '' ? options.tlsServerName : url.hostname.replace(/^\[|\]$/g, '');
  return {
    rejectUnauthorized: !options.tlsSkipVerify,
    ...(options.caPem === undefined ? {} : { ca: options.caPem }),
    ...(isIP(verifiedName) === 0 ? { servername: verifiedName } : {}),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(verifiedName, cert),
  };
}
