// The local Consul agent, through its documented HTTP API only. node:http rather than fetch:
// fetch needs WebAssembly (undici's parser), which a hardened unit may not allow.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ProgramError, type ErrorKind } from '../common/cli/errors.ts';

/** No usable answer from the agent: refused, reset, timed out, too large, or the run's deadline. */
export class ConsulUnavailableError extends ProgramError {
  override name = 'ConsulUnavailableError';
  readonly kind = 'unavailable';
}

/**
 * What an error answer means for the run: 429 and 5xx heal by themselves (run again); 401/403 (the
 * token, ACLs) and 400 (we sent something the agent refuses) do not.
 */
function consulStatusKind(status: number): ErrorKind {
  if (status === 429) return 'transient';
  if (status >= 500) return 'unavailable';
  return 'config';
}

/** Consul answered, but with an error, or with something that is not JSON. */
export class ConsulResponseError extends ProgramError {
  override name = 'ConsulResponseError';
  readonly kind: ErrorKind;
  readonly status: number;

  constructor(status: number, message: string, kind: ErrorKind = consulStatusKind(status)) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
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

export interface HealthEntry {
  Node: { Node: string };
  Service: { ID: string; Tags: string[] | null; Address: string; Port: number };
  Checks: { CheckID: string; Status: string }[];
}

export interface KvEntry {
  ModifyIndex: number;
  Value: string | null;
}

const MAX_BODY = 4 * 1024 * 1024;

export class ConsulAgent {
  readonly #base: URL;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #signal: AbortSignal;

  constructor(options: { address: string; token: string | undefined; timeoutMs: number; signal: AbortSignal }) {
    this.#base = new URL(options.address.includes('://') ? options.address : `http://${options.address}`);
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
    this.#signal = options.signal;
  }

  get address(): string {
    return this.#base.origin;
  }

  async #call(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.#base);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return await new Promise((resolve, reject) => {
      if (this.#signal.aborted) {
        reject(new ConsulUnavailableError(`${method} ${url.pathname}: deadline reached`));
        return;
      }
      let settled = false;
      const done = (error: Error | null, value?: { status: number; text: string }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#signal.removeEventListener('abort', onAbort);
        if (error !== null) reject(error);
        else if (value !== undefined) resolve(value);
      };
      const req = request(
        url,
        {
          method,
          agent: false,
          headers: {
            ...(this.#token === undefined ? {} : { 'X-Consul-Token': this.#token }),
            ...(payload === undefined ? {} : { 'Content-Length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY) {
              req.destroy();
              done(new ConsulUnavailableError(`${method} ${url.pathname}: answer exceeds ${MAX_BODY} bytes`));
            } else chunks.push(chunk);
          });
          res.on('error', (error) => done(new ConsulUnavailableError(`${method} ${url.pathname}: ${error.message}`)));
          res.on('end', () => done(null, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      const onAbort = (): void => {
        req.destroy();
        done(new ConsulUnavailableError(`${method} ${url.pathname}: deadline reached`));
      };
      const timer = setTimeout(() => {
        req.destroy();
        done(new ConsulUnavailableError(`${method} ${url.pathname}: no answer from ${this.#base.host} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (error: NodeJS.ErrnoException) =>
        done(new ConsulUnavailableError(`${method} ${url.pathname}: ${error.code ?? error.message} (${this.#base.host})`)),
      );
      req.end(payload);
    });
  }

  async #json<T>(method: 'GET' | 'PUT', path: string, body?: unknown, allow404 = false): Promise<T | undefined> {
    const { status, text } = await this.#call(method, path, body);
    if (status === 404 && allow404) return undefined;
    if (status < 200 || status > 299) throw new ConsulResponseError(status, `${method} ${path}: HTTP ${status} ${text.slice(0, 300)}`);
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConsulResponseError(status, `${method} ${path}: answer is not JSON`, 'bad-input');
    }
  }

  async service(id: string): Promise<AgentService | undefined> {
    return await this.#json<AgentService>('GET', `/v1/agent/service/${encodeURIComponent(id)}`, undefined, true);
  }

  async checks(): Promise<Record<string, AgentCheck>> {
    return (await this.#json<Record<string, AgentCheck>>('GET', '/v1/agent/checks')) ?? {};
  }

  async registerService(definition: unknown): Promise<void> {
    await this.#json('PUT', '/v1/agent/service/register', definition);
  }

  async updateTtlCheck(checkId: string, status: string, output: string): Promise<void> {
    await this.#json('PUT', `/v1/agent/check/update/${encodeURIComponent(checkId)}`, { Status: status, Output: output });
  }

  /** Every instance of `service` with `tag`, any health, as the servers see it. */
  async healthService(service: string, tag: string): Promise<HealthEntry[]> {
    return (
      (await this.#json<HealthEntry[]>('GET', `/v1/health/service/${encodeURIComponent(service)}?tag=${encodeURIComponent(tag)}`)) ?? []
    );
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    const entries = await this.#json<KvEntry[]>('GET', `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`, undefined, true);
    return entries?.[0];
  }

  /** Check-and-set: false when someone else wrote first (cas=0: only if absent). */
  async kvCas(key: string, value: string, cas: number): Promise<boolean> {
    const answer = await this.#json<boolean>('PUT', `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}?cas=${cas}`, value);
    return answer === true;
  }
}
