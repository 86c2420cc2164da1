// The one client of Consul's HTTP API, for the watcher and the hooks alike: the `consul` package's
// client (the design's choice; its papi transport uses node:http, so it needs no WebAssembly where
// fetch would) with exactly the calls the two programs make, typed, and one translation of its
// failures into ProgramErrors.
//
// Every call goes through the package's request layer (`_request`, as its own endpoint methods do)
// rather than those methods: they lack GET /v1/agent/service/:id and /v1/agent/check/update/:id,
// rename a service definition's fields, decode answers by Content-Type (one without comes back as
// bytes) and give X-Consul-Index only through an untyped `ctx.includeResponse` tuple. Here each path
// is built and each raw answer parsed once, so the requests are exactly what the ACL policies in
// consul/ grant and the doubles serve.
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { isIP } from 'node:net';
import { Writable } from 'node:stream';
import { checkServerIdentity } from 'node:tls';
import Consul from 'consul';
import { errorOfKind, ProgramError, type ErrorKind } from '../cli/errors.ts';
import type { ConsulTlsSettings } from './connection.ts';

/** No usable answer from the agent: refused, reset, TLS refused either way, timed out, too large, or the run's deadline. */
export class ConsulUnavailableError extends errorOfKind('ConsulUnavailableError', 'unavailable') {}

/** Consul answered, but with an error status, or with something that is not JSON. */
export class ConsulResponseError extends ProgramError {
  override name = 'ConsulResponseError';
  readonly kind: ErrorKind;
  readonly status: number;

  constructor(status: number, message: string, kind: ErrorKind) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * What an answer Consul gave but the program cannot use means for a run. No answer at all (refused,
 * timed out, the deadline) is always `unavailable`. The two programs count the rest differently,
 * and each keeps the exit codes its callers know: see KINDS_BY_STATUS and EVERY_ANSWER_UNAVAILABLE.
 */
export interface ConsulFailureKinds {
  /** An error status (anything but 2xx, except a 404 the call expects). */
  readonly status: (status: number) => ErrorKind;
  /** A 2xx answer that is not JSON. */
  readonly notJson: ErrorKind;
}

/**
 * The hooks' reading, for Sentinel, which only runs a hook again or not: 429 and 5xx heal by
 * themselves (run again); 401/403 (the token, ACLs) and 400 (we sent something the agent refuses) do
 * not, and neither does an answer that is not JSON.
 */
export const KINDS_BY_STATUS: ConsulFailureKinds = {
  status: (status) => (status === 429 ? 'transient' : status >= 500 ? 'unavailable' : 'config'),
  notJson: 'bad-input',
};

/**
 * The watcher's reading: any error answer, 403 included, and an answer it cannot decode are
 * `unavailable` (69), what the watcher has always exited with for Consul, and what the Consul agent
 * running it as a watch handler and its operators' alerts expect.
 */
export const EVERY_ANSWER_UNAVAILABLE: ConsulFailureKinds = { status: () => 'unavailable', notJson: 'unavailable' };

export interface ConsulClientOptions {
  /**
   * `host:port` or `http(s)://host:port`, as CONSUL_HTTP_ADDR; no port means the agent's 8500 (443
   * with https). An https address talks TLS or fails: never plain HTTP.
   */
  readonly address: string;
  /** CA, client certificate, server name (common/consul/connection.ts); absent: the system's CAs, the address's host. */
  readonly tls?: ConsulTlsSettings | undefined;
  readonly token: string | undefined;
  /** Each request's bound, from sending to the answer's last byte (a blocking query adds its wait). */
  readonly timeoutMs: number;
  /** The run's deadline: once aborted, calls in flight stop and new ones fail at once. */
  readonly signal?: AbortSignal;
  readonly failureKinds: ConsulFailureKinds;
}

export interface AgentService {
  ID: string;
  Service: string;
  Tags: string[] | null;
  Meta: Record<string, string> | null;
  Address: string;
  Port: number;
}

export interface AgentCheck {
  CheckID: string;
  Status: string;
  Output: string;
  ServiceID: string;
}

/** What /v1/agent/service/register takes, as the hooks register a Redis instance with its TTL check. */
export interface ServiceDefinition {
  ID: string;
  Name: string;
  Tags: string[];
  Address: string;
  Port: number;
  Meta: Record<string, string>;
  EnableTagOverride: boolean;
  Check: { CheckID: string; Name: string; TTL: string; Status: string; Notes: string };
}

/**
 * One instance in /v1/health/service/:service, the fields the hooks read. Not checked here: the
 * watcher, which publishes what it reads, checks each entry with its own schema.
 */
export interface HealthEntry {
  Node: { Node: string };
  Service: { ID: string; Tags: string[] | null; Address: string; Port: number };
  Checks: { CheckID: string; Status: string }[];
}

export interface KvEntry {
  Key: string;
  /** The value as UTF-8 text (Consul sends it base64); null when the key holds no value. */
  Value: string | null;
  ModifyIndex: number;
}

/** An answer with its X-Consul-Index, the index a blocking query waits past. */
export interface Indexed<T> {
  value: T;
  index: number;
}

export interface SessionOptions {
  name: string;
  /** A Consul duration, e.g. `10s`. */
  ttl: string;
  behavior: 'release' | 'delete';
  /** A Consul duration, e.g. `1s`. */
  lockDelay: string;
}

/** More than any answer the programs ask for; a bigger one is cut off as no usable answer. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export class ConsulClient {
  readonly #papi: PapiClient;
  readonly #host: string;
  readonly #secure: boolean;
  /** How messages name the agent: `host:port`, or `https://host:port` when it is TLS. */
  readonly #shown: string;
  readonly #tls: ConsulTlsSettings | undefined;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #kinds: ConsulFailureKinds;

  constructor(options: ConsulClientOptions) {
    const url = new URL(options.address.includes('://') ? options.address : `http://${options.address}`);
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 8500));
    this.#host = `${url.hostname}:${port}`;
    this.#secure = secure;
    this.#shown = secure ? `https://${this.#host}` : this.#host;
    this.#tls = options.tls;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
    this.#signal = options.signal;
    this.#kinds = options.failureKinds;
    // A connection per request, as a short-lived program wants: nothing pooled outlives a run.
    const consul = new Consul({
      host: url.hostname,
      port,
      secure,
      agent: secure
        ? new HttpsAgent({ keepAlive: false, ...tlsOptions(options.tls, url.hostname.replace(/^\[(.*)\]$/, '$1')) })
        : new HttpAgent({ keepAlive: false }),
    });
    // The package's client is a papi Client, whose request layer its bundled typings do not declare.
    this.#papi = consul as unknown as PapiClient;
  }

  /** The address requests go to, `host:port`. */
  get address(): string {
    return this.#host;
  }

  /** GET /v1/agent/service/:id: the local registration, undefined when there is none. */
  async agentService(id: string): Promise<AgentService | undefined> {
    return await this.#json<AgentService>('GET', `/agent/service/${encodeURIComponent(id)}`, { allow404: true });
  }

  /** GET /v1/agent/checks: the local agent's checks by id. */
  async agentChecks(): Promise<Record<string, AgentCheck>> {
    return (await this.#json<Record<string, AgentCheck>>('GET', '/agent/checks')) ?? {};
  }

  async registerService(definition: ServiceDefinition): Promise<void> {
    await this.#json('PUT', '/agent/service/register', { body: JSON.stringify(definition) });
  }

  /** Sets a TTL check's status and output (which a registration cannot carry), and restarts its TTL. */
  async updateTtlCheck(checkId: string, status: string, output: string): Promise<void> {
    await this.#json('PUT', `/agent/check/update/${encodeURIComponent(checkId)}`, {
      body: JSON.stringify({ Status: status, Output: output }),
    });
  }

  /** GET /v1/health/service/:service: every instance (`tag`: only those with it), any health, with the index. */
  async healthService(service: string, options: { tag?: string } = {}): Promise<Indexed<HealthEntry[]>> {
    const query = options.tag === undefined ? '' : `?tag=${encodeURIComponent(options.tag)}`;
    const answer = await this.#call('GET', `/health/service/${encodeURIComponent(service)}${query}`);
    return { value: this.#parse<HealthEntry[]>(answer) ?? [], index: answer.index };
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    const entries = await this.#json<RawKvEntry[]>('GET', kvPath(key), { allow404: true });
    const entry = entries?.[0];
    return entry === undefined ? undefined : decodedEntry(entry);
  }

  /** Every key under `prefix` (recurse), none when there is none. */
  async kvList(prefix: string): Promise<KvEntry[]> {
    const entries = await this.#json<RawKvEntry[]>('GET', `${kvPath(prefix)}?recurse=true`, { allow404: true });
    return (entries ?? []).map(decodedEntry);
  }

  /**
   * Waits until `key` changes past `index` (a blocking query), at most `waitMs`; without `index`,
   * answers at once. Returns the index to wait past next; the key may be absent.
   */
  async kvWait(key: string, wait?: { index: number; waitMs: number }): Promise<number> {
    const query = wait === undefined ? '' : `?index=${wait.index}&wait=${Math.max(1, Math.ceil(wait.waitMs / 1000))}s`;
    const answer = await this.#call('GET', `${kvPath(key)}${query}`, {
      allow404: true,
      ...(wait === undefined ? {} : { timeoutMs: wait.waitMs + 2000 }),
    });
    return answer.index;
  }

  async kvSet(key: string, value: string): Promise<boolean> {
    return (await this.#json<boolean>('PUT', kvPath(key), { body: value })) === true;
  }

  /** Check-and-set: false when someone else wrote first (cas=0: only if absent). */
  async kvCas(key: string, value: string, cas: number): Promise<boolean> {
    return (await this.#json<boolean>('PUT', `${kvPath(key)}?cas=${cas}`, { body: value })) === true;
  }

  /** Takes the lock `key` for `session`: false when another session holds it. */
  async kvAcquire(key: string, value: string, session: string): Promise<boolean> {
    return (await this.#json<boolean>('PUT', `${kvPath(key)}?acquire=${encodeURIComponent(session)}`, { body: value })) === true;
  }

  async kvRelease(key: string, value: string, session: string): Promise<boolean> {
    return (await this.#json<boolean>('PUT', `${kvPath(key)}?release=${encodeURIComponent(session)}`, { body: value })) === true;
  }

  async kvDelete(key: string): Promise<void> {
    await this.#json('DELETE', kvPath(key));
  }

  /** Returns the new session's id. */
  async sessionCreate(options: SessionOptions): Promise<string> {
    const body = { Name: options.name, TTL: options.ttl, Behavior: options.behavior, LockDelay: options.lockDelay };
    const answer = await this.#json<{ ID?: unknown }>('PUT', '/session/create', { body: JSON.stringify(body) });
    if (typeof answer?.ID !== 'string') throw this.#notJson('PUT', '/session/create', 200);
    return answer.ID;
  }

  /** Fails (404) once Consul has invalidated the session. */
  async sessionRenew(id: string): Promise<void> {
    await this.#json('PUT', `/session/renew/${encodeURIComponent(id)}`);
  }

  async sessionDestroy(id: string): Promise<void> {
    await this.#json('PUT', `/session/destroy/${encodeURIComponent(id)}`);
  }

  async #json<T>(method: Method, path: string, options: CallOptions = {}): Promise<T | undefined> {
    const answer = await this.#call(method, path, options);
    return answer.status === 404 ? undefined : this.#parse<T>(answer);
  }

  #parse<T>(answer: Answer): T | undefined {
    if (answer.text === '') return undefined;
    try {
      return JSON.parse(answer.text) as T;
    } catch {
      throw this.#notJson(answer.method, answer.path, answer.status);
    }
  }

  #notJson(method: Method, path: string, status: number): ConsulResponseError {
    return new ConsulResponseError(status, `${method} /v1${path}: answer is not JSON`, this.#kinds.notJson);
  }

  /** One request; every way it can fail leaves as a ConsulUnavailableError or a ConsulResponseError. */
  async #call(method: Method, path: string, options: CallOptions = {}): Promise<Answer> {
    const shown = `${method} /v1${path.split('?')[0] ?? path}`;
    if (this.#signal?.aborted === true) throw new ConsulUnavailableError(`${shown}: deadline reached`);
    const atAgent = `Consul agent at ${this.#shown}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    // papi aborts a request when its ctx emits `cancel`: the run's deadline, or an answer too large.
    const ctx = new EventEmitter();
    let cancelled: 'deadline reached' | `answer exceeds ${number} bytes` | undefined;
    const cancel = (why: NonNullable<typeof cancelled>): void => {
      cancelled ??= why;
      ctx.emit('cancel');
    };
    const onAbort = (): void => cancel('deadline reached');
    this.#signal?.addEventListener('abort', onAbort, { once: true });
    const chunks: Buffer[] = [];
    let size = 0;
    // papi pipes the answer here rather than decoding it by Content-Type: the text is parsed below.
    const sink = (): Writable =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) cancel(`answer exceeds ${MAX_ANSWER_BYTES} bytes`);
          else chunks.push(chunk);
          done();
        },
      });
    try {
      const response = await this.#papi._request({
        method,
        path,
        headers: this.#token === undefined ? {} : { 'x-consul-token': this.#token },
        ...(options.body === undefined ? {} : { body: Buffer.from(options.body, 'utf8') }),
        timeout: timeoutMs,
        ctx,
        pipe: sink,
      });
      return answerOf(method, path, response, chunks);
    } catch (error) {
      const failure = error as PapiFailure;
      if (cancelled === 'deadline reached') throw new ConsulUnavailableError(`${shown}: ${cancelled}`, { cause: error });
      if (cancelled !== undefined) throw new ConsulUnavailableError(`${atAgent}: ${cancelled} on ${shown}`, { cause: error });
      if (failure.isResponse === true && failure.response !== undefined) {
        const status = failure.response.statusCode;
        if (status === 404 && options.allow404 === true) return answerOf(method, path, failure.response, chunks);
        const text = Buffer.concat(chunks).toString('utf8');
        throw new ConsulResponseError(status, `${method} /v1${path}: HTTP ${status} ${text.slice(0, 300)}`, this.#kinds.status(status));
      }
      if (failure.isTimeout === true) {
        throw new ConsulUnavailableError(`${atAgent}: no answer within ${timeoutMs} ms on ${shown}`, { cause: error });
      }
      if (typeof failure.code === 'string' || failure.isPapi !== true) {
        const fix = this.#secure ? hint(failure, this.#tls) : '';
        throw new ConsulUnavailableError(`${atAgent}: ${connectionFailure(failure, this.#tls)} on ${shown}${fix}`, { cause: error });
      }
      // A papi failure of its own (a request it refused to build): a bug of ours, left as it is.
      throw error;
    } finally {
      this.#signal?.removeEventListener('abort', onAbort);
    }
  }
}

type Method = 'GET' | 'PUT' | 'DELETE';

/** The https agent's TLS options: TLS 1.2 or later, the CA given or the system's, the name checked even for an IP. */
function tlsOptions(tls: ConsulTlsSettings | undefined, host: string): HttpsAgentOptions {
  const name = tls?.serverName ?? host;
  return {
    minVersion: 'TLSv1.2',
    rejectUnauthorized: tls?.verify ?? true,
    ...(tls?.ca === undefined ? {} : { ca: [...tls.ca.pems] }),
    ...(tls?.clientCert === undefined ? {} : { cert: tls.clientCert.cert, key: tls.clientCert.key }),
    // SNI carries names only (RFC 6066); the certificate is checked against the name either way.
    ...(isIP(name) === 0 ? { servername: name } : {}),
    checkServerIdentity: (_host, certificate) => checkServerIdentity(name, certificate),
  };
}

/** OpenSSL's verify results (Node's error codes) that mean: no chain from the agent's certificate to a CA we trust. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const NOT_VALID_NOW = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** An answer that is not TLS at all: an http port behind an https address. */
function isNotTls(failure: PapiFailure): boolean {
  return (
    /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|RECORD_LAYER_FAILURE)$/.test(failure.code ?? '') ||
    (failure.code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(failure.message))
  );
}

/** The agent ended the handshake with an alert: usually our client certificate, missing or not trusted. */
function isHandshakeAlert(failure: PapiFailure): boolean {
  return /^ERR_SSL_(TLSV1[0-9]?_|SSLV3_)?ALERT_/.test(failure.code ?? '');
}

/** What went wrong with the connection, as a sentence part; the code stays in it for runbooks and searches. */
function connectionFailure(failure: PapiFailure, tls: ConsulTlsSettings | undefined): string {
  const code = failure.code ?? failure.message;
  if (UNTRUSTED.has(code)) return `certificate not trusted by ${tls?.ca?.source ?? "the system's CAs"} (${code})`;
  if (NOT_VALID_NOW.has(code)) return `certificate ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'} (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `certificate name mismatch (${code}: ${(failure as { reason?: string }).reason ?? failure.message})`;
  if (isNotTls(failure)) {
    // Node 20 says only EPROTO in the code; OpenSSL's reason is in the message.
    const reason = code === 'EPROTO' ? /wrong version number|packet length too long|http request/i.exec(failure.message)?.[0] : undefined;
    return `no TLS at this address (${code}${reason === undefined ? '' : `: ${reason}`})`;
  }
  if (isHandshakeAlert(failure)) return `TLS handshake refused by the agent (${code})`;
  return code;
}

/** What to set, for the TLS failures a setting fixes. */
function hint(failure: PapiFailure, tls: ConsulTlsSettings | undefined): string {
  const code = failure.code ?? '';
  if (UNTRUSTED.has(code)) return "; set CONSUL_CACERT (consulCaFile) to the CA that signed the agent's certificate";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return '; connect by a name the certificate carries or set CONSUL_TLS_SERVER_NAME (consulTlsServerName)';
  if (isNotTls(failure)) return "; is this the agent's HTTP port? Its HTTPS port (ports.https) is usually 8501";
  // TLS 1.3 checks the client's certificate after the client's side of the handshake: a refusal
  // arrives as the agent's alert, or as a reset when the request was already on its way.
  if (isHandshakeAlert(failure) || code === 'ECONNRESET') {
    return tls?.clientCert === undefined
      ? '; if the agent verifies clients (tls.https.verify_incoming), set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (consulClientCertFile, consulClientKeyFile)'
      : "; if the agent verifies clients (tls.https.verify_incoming), it refused the client certificate: it must chain to a CA in the agent's tls ca_file and allow client authentication";
  }
  return '';
}

interface CallOptions {
  body?: string;
  /** A 404 answer is an answer (no such key, no such registration), not a failure. */
  allow404?: boolean;
  timeoutMs?: number;
}

interface Answer {
  method: Method;
  path: string;
  status: number;
  text: string;
  index: number;
}

interface RawKvEntry {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

/** The part of papi's Client (under the package's Consul class) this file calls. */
interface PapiClient {
  _request(options: {
    method: Method;
    /** Under the client's base URL (…/v1); `{name}` would be a parameter: every part here is encoded. */
    path: string;
    headers: Record<string, string>;
    body?: Buffer;
    timeout: number;
    ctx: EventEmitter;
    pipe: () => Writable;
  }): Promise<PapiResponse>;
}

interface PapiResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
}

/** What papi rejects with: its own errors (flags), or the socket's (a code such as ECONNREFUSED). */
interface PapiFailure extends Error {
  isPapi?: boolean;
  isResponse?: boolean;
  isTimeout?: boolean;
  response?: PapiResponse;
  code?: string;
}

function answerOf(method: Method, path: string, response: PapiResponse, chunks: Buffer[]): Answer {
  const index = Number(response.headers['x-consul-index'] ?? 0);
  return {
    method,
    path,
    status: response.statusCode,
    text: Buffer.concat(chunks).toString('utf8'),
    index: Number.isFinite(index) ? index : 0,
  };
}

/** Keys keep their `/` (as the consul CLI sends them); every segment is encoded. */
function kvPath(key: string): string {
  return `/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function decodedEntry(entry: RawKvEntry): KvEntry {
  return {
    Key: entry.Key,
    Value: entry.Value === null ? null : Buffer.from(entry.Value, 'base64').toString('utf8'),
    ModifyIndex: entry.ModifyIndex,
  };
}
