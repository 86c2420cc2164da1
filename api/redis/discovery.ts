// Owns "the current Redis master connection" when the master is found by name (Consul DNS:
// master.redis.service.consul), so that a Sentinel failover moves st-api to the new master without
// a restart and without failing a play.
//
// The loop: resolve the name → connect to an answer → confirm ROLE is master → use it. It looks
// again when a caller sees READONLY (the master was demoted under us), when the connection ends
// (it is killed, or Sentinel disconnects clients on failover), when the health probe sees a
// replica, and every refreshIntervalMs (a forced failover leaves the old master writable for
// seconds, so neither READONLY nor a disconnect would tell us). Until a master is confirmed,
// client() is undefined: the cache reads misses and the rate limiter fails open, and no play waits
// for any of this — every step is bounded and runs in the background.
import { isIP } from 'node:net';
import { lookup, Resolver } from 'node:dns/promises';
import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import { withTimeout } from '../../common/with-timeout.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { commandDeadlineMs, createRedisClient, isReadOnlyError, RedisStuckError, type RedisSettings, type RedisSource } from './client.ts';
import type { ScriptedRedis } from './scripts.ts';
import { tlsFailure } from './tls.ts';

export interface RedisDiscoverySettings {
  /** The DNS name of the master, e.g. master.redis.service.consul. */
  name: string;
  /** `ip[:port]` of the DNS server to ask (the local Consul agent, 127.0.0.1:8600); absent = the system resolver. */
  dnsServer?: string | undefined;
  /** 'srv': the port comes from the name's SRV record; a number: A records on this port. */
  port: number | 'srv';
  resolveTimeoutMs: number;
  refreshIntervalMs: number;
  retryMinMs: number;
  retryMaxMs: number;
}

export interface RedisDiscoveryOptions {
  discovery: RedisDiscoverySettings;
  /** Everything but host and port, which discovery fills in. */
  client: Omit<RedisSettings, 'host' | 'port'>;
  metrics: Metrics;
  logger: Logger;
  random?: () => number;
}

interface Address {
  host: string;
  port: number;
}

interface Current {
  redis: ScriptedRedis;
  address: string;
  /** Cleared when READONLY, a replica ROLE or the end of the connection says it no longer is the master. */
  usable: boolean;
}

const text = (address: Address): string =>
  isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;

export class RedisDiscovery implements RedisSource {
  readonly #settings: RedisDiscoverySettings;
  readonly #client: Omit<RedisSettings, 'host' | 'port'>;
  readonly deadlineMs: number;
  readonly #logger: Logger;
  readonly #random: () => number;
  /** Own resolver: dns.lookup (what ioredis would use for a hostname) ignores setServers, and resolv.conf has no port. */
  readonly #resolver: Resolver;
  readonly #switches: Counter<'reason'>;
  readonly #lookups: Counter<'result'>;
  #current: Current | undefined;
  /** A connection being tried, so close() can end it too. */
  #candidate: Redis | undefined;
  /** Health text while there is no usable master. */
  #why = 'down(resolving)';
  #running = false;
  #again = false;
  #reason = 'start';
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #wakeSleep: (() => void) | undefined;
  #loop: Promise<void> = Promise.resolve();

  constructor(options: RedisDiscoveryOptions) {
    this.#settings = options.discovery;
    this.#client = options.client;
    this.deadlineMs = commandDeadlineMs(options.client);
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
    this.#resolver = new Resolver({ timeout: options.discovery.resolveTimeoutMs, tries: 1 });
    if (options.discovery.dnsServer !== undefined) this.#resolver.setServers([options.discovery.dnsServer]);
    this.#switches = new Counter({
      name: 'st_api_redis_master_switches_total',
      help: 'Times the Redis master connection moved to another address (reason: what made st-api look again)',
      labelNames: ['reason'] as const,
      registers: [options.metrics.registry],
    });
    this.#lookups = new Counter({
      name: 'st_api_redis_master_lookups_total',
      help: 'Redis master look-ups by result: master, kept, not_master, dns_error, no_answer, connect_error',
      labelNames: ['result'] as const,
      registers: [options.metrics.registry],
    });
  }

  /** Starts looking in the background and re-checks every refreshIntervalMs; returns at once. */
  start(): void {
    this.#wake('start');
    this.#timer = setInterval(() => this.#wake('refresh'), this.#settings.refreshIntervalMs);
    this.#timer.unref();
  }

  client(): ScriptedRedis | undefined {
    const current = this.#current;
    return current !== undefined && current.usable && current.redis.status === 'ready' ? current.redis : undefined;
  }

  unavailable(): string {
    const current = this.#current;
    // Between a connection's close and its 'end' it is still "usable" but not ready.
    if (current?.usable === true && current.redis.status !== 'ready') return `down(${current.redis.status})`;
    return this.#why;
  }

  /** The address in use, `host:port`, or undefined. */
  address(): string | undefined {
    return this.#current?.usable === true ? this.#current.address : undefined;
  }

  reportError(error: unknown, from: Redis): void {
    if (isReadOnlyError(error)) this.#demote(from, 'not-master(readonly)', 'readonly');
    // Broken inside the client library: a fresh connection, wherever the master is now.
    else if (error instanceof RedisStuckError) this.#demote(from, 'down(stuck)', 'stuck');
  }

  reportNotMaster(role: string, from: Redis): void {
    this.#demote(from, `not-master(${role.slice(0, 16)})`, 'not_master');
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#wakeSleep?.();
    this.#resolver.cancel();
    this.#candidate?.disconnect();
    const current = this.#current;
    this.#current = undefined;
    // QUIT lets in-flight cache writes finish; commandTimeout bounds it, disconnect() is the fallback.
    await Promise.allSettled([current?.redis.quit().catch(() => current.redis.disconnect()), this.#loop]);
  }

  /** Errors from a connection that is no longer the current one are old news: ignore them. */
  #demote(from: Redis, why: string, reason: string): void {
    const current = this.#current;
    if (current === undefined || current.redis !== from || !current.usable) return;
    current.usable = false;
    this.#why = why;
    this.#logger.warn({ address: current.address, why }, 'redis connection is not usable as the master any more; looking it up again');
    this.#wake(reason);
  }

  /** Asks for a look; one loop at a time, and a look asked during one runs right after it. */
  #wake(reason: string): void {
    if (this.#closed) return;
    // The metric's reason is what started the search, not the periodic refresh that ran during it.
    if (!this.#running || this.#reason === 'refresh') this.#reason = reason;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#again = true;
    this.#loop = this.#run().finally(() => {
      this.#running = false;
    });
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (this.#again && !this.#closed) {
      this.#again = false;
      const reason = this.#reason;
      let found = false;
      try {
        found = await this.#lookOnce(reason);
      } catch (error) {
        // A bug here must not stop discovery for good; log it and keep trying on the back-off.
        this.#logger.error({ err: error instanceof Error ? error.message : 'unknown' }, 'redis discovery failed unexpectedly');
      }
      if (found) {
        attempt = 0;
        continue;
      }
      this.#again = true;
      await this.#sleep(this.#backoff(attempt++));
    }
  }

  /** true when a confirmed master is in use at the end of it. */
  async #lookOnce(reason: string): Promise<boolean> {
    let answers: Address[];
    try {
      answers = await this.#resolve();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const detail = typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code.toLowerCase() : 'error';
      this.#lookups.inc({ result: detail === 'enotfound' || detail === 'enodata' ? 'no_answer' : 'dns_error' });
      // DNS trouble (Consul agent restarting, the master briefly critical) says nothing against a
      // master we are connected to and that answers as one: keep it.
      if (this.client() !== undefined) return true;
      this.#why = `down(resolving:${detail})`;
      return false;
    }
    const current = this.#current;
    if (current !== undefined && this.client() !== undefined && answers.some((answer) => text(answer) === current.address)) {
      this.#lookups.inc({ result: 'kept' });
      return true;
    }
    for (const answer of answers) {
      if (this.#closed) return true;
      const redis = await this.#tryMaster(answer);
      if (redis === undefined) continue;
      this.#install(redis, text(answer), reason);
      return true;
    }
    // Every answer is down or a replica (Consul not yet re-tagged after a failover). A master we
    // still hold stays in use until a better one is found.
    return this.client() !== undefined;
  }

  async #resolve(): Promise<Address[]> {
    const { name, port } = this.#settings;
    if (port === 'srv') {
      const records = await this.#bounded(this.#resolver.resolveSrv(name));
      records.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
      const addresses: Address[] = [];
      for (const record of records) {
        // Consul's SRV targets are node names (<node>.node.dc1.consul) or <hex>.addr.dc1.consul;
        // Node does not hand out the additional A records, so resolve each target.
        const hosts = isIP(record.name) !== 0 ? [record.name] : await this.#hostAddresses(record.name);
        for (const host of hosts) addresses.push({ host, port: record.port });
      }
      if (addresses.length === 0) throw Object.assign(new Error('no SRV answer'), { code: 'ENODATA' });
      return addresses;
    }
    return (await this.#hostAddresses(name)).map((host) => ({ host, port }));
  }

  async #hostAddresses(name: string): Promise<string[]> {
    if (this.#settings.dnsServer !== undefined) return this.#bounded(this.#resolver.resolve4(name));
    // The system resolver (a local forwarder for .consul, /etc/hosts): getaddrinfo, bounded here
    // because it has no timeout of its own.
    const found = await this.#bounded(lookup(name, { all: true }));
    return found.map((entry) => entry.address);
  }

  /** Connects to one answer and keeps it only if ROLE says master; undefined otherwise. */
  async #tryMaster(address: Address): Promise<ScriptedRedis | undefined> {
    const redis = createRedisClient({ ...this.#client, host: address.host, port: address.port }, { reconnect: false });
    // Without a listener an 'error' event would crash the process; failures are counted below.
    let lastError: unknown;
    redis.on('error', (error) => {
      lastError = error;
    });
    this.#candidate = redis;
    try {
      await this.#bounded(redis.connect(), this.#client.connectTimeoutMs + this.#client.commandTimeoutMs);
      const role = (await redis.call('ROLE')) as unknown[];
      const name = String(role[0]);
      if (name === 'master') return redis;
      this.#lookups.inc({ result: 'not_master' });
      this.#why = `not-master(${name.slice(0, 16)})`;
    } catch (error) {
      this.#lookups.inc({ result: 'connect_error' });
      const code = (error as { code?: unknown }).code;
      // ioredis rejects connect() with "Connection is closed"; the socket's own error (a refused
      // certificate) is the one its 'error' event carried.
      const tls = tlsFailure(error) ?? tlsFailure(lastError);
      const why = `down(${tls ?? (typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code.toLowerCase() : 'connecting')})`;
      // Once per change: a wrong CA fails every retry the same way.
      if (tls !== undefined && why !== this.#why) {
        this.#logger.warn(
          { address: text(address), cause: tls, detail: lastError instanceof Error ? lastError.message.slice(0, 200) : undefined },
          tls.startsWith('certificate:')
            ? 'redis refused: its TLS certificate did not verify (CA, or redis.tls.servername / the discovery name not in it); serving from the catalog'
            : 'redis refused over TLS while looking for the master; serving from the catalog',
        );
      }
      this.#why = why;
    } finally {
      this.#candidate = undefined;
    }
    redis.disconnect();
    return undefined;
  }

  #install(redis: ScriptedRedis, address: string, reason: string): void {
    if (this.#closed) {
      redis.disconnect();
      return;
    }
    const old = this.#current;
    const next: Current = { redis, address, usable: true };
    this.#current = next;
    // The connection never reconnects by itself: its end means "look again", wherever the master is now.
    redis.once('end', () => {
      if (this.#current !== next || !next.usable) return;
      next.usable = false;
      this.#why = 'down(disconnected)';
      this.#logger.warn({ address }, 'redis master connection lost; looking it up again');
      this.#wake('disconnect');
    });
    this.#lookups.inc({ result: 'master' });
    if (old === undefined) {
      this.#logger.info({ address }, 'redis master found');
    } else {
      old.redis.disconnect();
      if (old.address !== address) {
        this.#switches.inc({ reason });
        this.#logger.warn({ from: old.address, to: address, reason }, `redis master switched ${old.address} -> ${address}`);
      } else {
        this.#logger.info({ address, reason }, 'redis master reconnected');
      }
    }
  }

  #backoff(attempt: number): number {
    const { retryMinMs, retryMaxMs } = this.#settings;
    const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(attempt, 20));
    // Jitter, so the nodes of a fleet do not knock on the new master in step.
    return Math.round(base * (0.8 + 0.2 * this.#random()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeSleep = done;
    });
  }

  /** Every wait here has an end: resolveTimeoutMs unless told otherwise. */
  #bounded<T>(work: Promise<T>, ms = this.#settings.resolveTimeoutMs): Promise<T> {
    return withTimeout(work, ms, (bound) => Object.assign(new Error(`no answer within ${bound} ms`), { code: 'ETIMEOUT' }));
  }
}
