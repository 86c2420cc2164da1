// Starts a real st-api node in-process on port 0, optionally against throwaway MariaDB and Redis
// servers, with the demo's generated keys so tests sign real client JWTs.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import mysql from 'mysql2/promise';
import { migrate } from '../api/catalog/migrate.ts';
import { seed } from '../api/catalog/seed.ts';
import type { Dataset } from '../api/catalog/dataset.ts';
import { parseConfig, type Config } from '../api/config.ts';
import { embeddedDemo, type EmbeddedDemo } from '../api/demo/embedded.ts';
import { createLogger, LOG_LEVELS } from '../api/logger.ts';
import { createHttpServer } from '../api/http-server.ts';
import { createService, type Service } from '../api/service.ts';
import { ServingCertificate } from '../api/tls/serving-certificate.ts';
import type { MariaDbServer } from './mariadb.ts';
import { waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

export interface TestNode {
  baseUrl: string;
  /** With `admin` in the overrides: the admin listener (plain HTTP, a free loopback port whatever admin.port says). */
  adminUrl: string | undefined;
  service: Service;
  /** With `tls`: the certificate the node serves, as main.ts keeps it. */
  certificate: ServingCertificate | undefined;
  demo: EmbeddedDemo;
  config: Config;
  tokenFor(userId: string): string;
  play(body: unknown, token?: string | null): Promise<Response>;
  close(): Promise<void>;
}

export interface TestNodeOptions {
  /** `tls`: the node's mysql.tls; default for a server with TLS on: its CA. */
  mysql?: { server: MariaDbServer; database: string; tls?: Record<string, unknown> };
  redis?: RedisServer;
  /** Merged over the generated configuration before validation. */
  overrides?: Record<string, unknown>;
  now?: () => number;
  random?: () => number;
  /** Listen on this port instead of a free one (a node upgraded in place keeps its address). */
  port?: number;
  /**
   * Serve HTTPS from these files (listen.tls) through the production server and certificate reloader,
   * as api/main.ts does; baseUrl is then https://… (fetch() does not trust a test CA: use testkit/https-client.ts).
   */
  tls?: { certFile: string; keyFile: string; pollIntervalMs?: number; watch?: boolean };
  /** Receives the node's JSON log lines at info level and above (else ST_TEST_LOG_LEVEL decides, silent by default). */
  logDestination?: DestinationStream;
}

export async function startTestNode(options: TestNodeOptions = {}): Promise<TestNode> {
  const demo = embeddedDemo();
  const raw: Record<string, unknown> = {
    ...demo.rawConfig,
    listen: { host: '127.0.0.1', port: 0, ...(options.tls === undefined ? {} : { tls: listenTls(options.tls) }) },
    logLevel: 'silent',
    shutdown: { drainMs: 0, timeoutMs: 2000 },
    health: { probeTimeoutMs: 300 },
    ...(options.mysql === undefined
      ? {}
      : {
          mysql: {
            ...nodeMysqlAddress(options.mysql.server, options.mysql.tls),
            database: options.mysql.database,
            poolSize: 8,
            connectTimeoutMs: 500,
            queryTimeoutMs: 500,
          },
        }),
    ...(options.redis === undefined
      ? {}
      : { redis: { host: options.redis.host, port: options.redis.port, commandTimeoutMs: 50, connectTimeoutMs: 300 } }),
    ...options.overrides,
  };
  const config = parseConfig(raw, {});
  // ST_TEST_LOG_LEVEL=debug shows the nodes' logs (stdout) when a test needs explaining.
  const logger = createLogger({
    level:
      options.logDestination === undefined ? (LOG_LEVELS.find((level) => level === process.env['ST_TEST_LOG_LEVEL']) ?? 'silent') : 'info',
    program: 'st-api-test',
    ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
  });
  const tls = config.listen.tls;
  const certificate = tls === undefined ? undefined : ServingCertificate.open(tls, logger, { pollIntervalMs: tls.pollIntervalMs });
  const service = createService(config, logger, {
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.random === undefined ? {} : { random: options.random }),
    ...(certificate === undefined ? {} : { certificate }),
  });
  const server: Server | HttpsServer =
    certificate === undefined || tls === undefined
      ? service.app.listen(options.port ?? 0, '127.0.0.1')
      : createHttpServer(service.app, config.http, { certificate, minVersion: tls.minVersion }).listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const adminServer = service.adminApp === undefined ? undefined : createHttpServer(service.adminApp, config.http).listen(0, '127.0.0.1');
  if (adminServer !== undefined) await once(adminServer, 'listening');
  certificate?.watch(tls?.watch ?? true);
  const baseUrl = `${certificate === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.redis !== undefined) {
    // Redis connects in the background; tests that count on the cache wait until it is in use.
    await waitFor(async () => ((await (await fetch(`${baseUrl}/health/deep`)).text()).includes('redis=ok') ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'the node to connect to Redis',
    });
  }

  return {
    baseUrl,
    adminUrl: adminServer === undefined ? undefined : `http://127.0.0.1:${(adminServer.address() as AddressInfo).port}`,
    service,
    certificate,
    demo,
    config,
    tokenFor: (userId) => demo.tokenFor(userId, 600),
    play: (body, token) =>
      fetch(`${baseUrl}/v1/playback-urls`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token === null ? {} : { authorization: `Bearer ${token ?? demo.tokenFor('demo-user', 600)}` }),
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        // A hung request fails its own test clearly instead of timing out the whole file.
        signal: AbortSignal.timeout(10_000),
      }),
    async close() {
      certificate?.close();
      for (const each of adminServer === undefined ? [server] : [server, adminServer]) {
        each.closeAllConnections();
        each.close();
      }
      await service.close();
    },
  };
}

/** The server's address and account as the configuration's mysql section takes them. */
function nodeMysqlAddress(server: MariaDbServer, tls: Record<string, unknown> | undefined): Record<string, unknown> {
  const { host, port, user, password } = server.connectionOptions();
  const tlsSection = tls ?? (server.tls === undefined ? undefined : { ca: server.tls.caFile });
  return { host, port, user, password, ...(tlsSection === undefined ? {} : { tls: tlsSection }) };
}

/** The listen.tls keys from `tls` (which may be a whole CertificateFiles from testkit/tls.ts). */
function listenTls(tls: NonNullable<TestNodeOptions['tls']>): Record<string, unknown> {
  const { certFile, keyFile, pollIntervalMs, watch } = tls;
  return { certFile, keyFile, ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }), ...(watch === undefined ? {} : { watch }) };
}

/** Creates a database on a throwaway server, applies the migrations and loads a dataset. */
export async function createCatalogDatabase(server: MariaDbServer, database: string, dataset: Dataset): Promise<void> {
  const admin = await mysql.createConnection(server.connectionOptions());
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const { ssl, ...address } = server.connectionOptions();
  await migrate({
    ...address,
    database,
    connectTimeoutMs: 2000,
    tls: ssl === undefined ? undefined : { ca: ssl.ca, servername: address.host },
  });
  const pool = mysql.createPool({ ...server.connectionOptions(), database, timezone: 'Z', connectionLimit: 2 });
  try {
    await seed(pool, dataset);
  } finally {
    await pool.end();
  }
}
