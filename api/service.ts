// Builds every dependency of one st-api node from a validated configuration, and takes it down again.
// The only place that decides between real and embedded implementations.
import { isIP } from 'node:net';
import type { Express } from 'express';
import { createAdminApp, createApp } from './app.ts';
import { readBuildInfo, type BuildInfo } from './build-info.ts';
import { createTokenVerifier, tokenKey } from './auth/client-token.ts';
import { CachedCatalogStore } from './catalog/cached-store.ts';
import { staticRedisSource, type RedisSource } from './redis/client.ts';
import { RedisDiscovery } from './redis/discovery.ts';
import { tlsConnectionOptions } from './redis/tls.ts';
import { demoDataset } from './catalog/dataset.ts';
import { MemoryCatalogStore } from './catalog/memory-store.ts';
import { createMysqlPool, MysqlCatalogStore } from './catalog/mysql-store.ts';
import type { CatalogStore } from './catalog/types.ts';
import type { Config } from './config.ts';
import type { Cdn } from './delivery/cdn.ts';
import { GrantCache } from './delivery/grant-cache.ts';
import {
  drainingProbe,
  eventLoopProbe,
  manifestOriginsProbe,
  mysqlProbe,
  redisProbe,
  servingCertificateProbe,
  signingKeysProbe,
} from './health/probes.ts';
import { ManifestTokens } from './manifests/manifest-token.ts';
import { ManifestCache } from './manifests/origin-cache.ts';
import { RenderCache } from './manifests/render-cache.ts';
import type { Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { NO_RATE_LIMIT, redisRateLimiter } from './playback/rate-limit.ts';
import { signerFromConfig } from './signing/config.ts';
import { loadOpenApiDocument } from './routes/openapi.ts';

export interface Service {
  app: Express;
  /** The admin listener's app (/metrics and health) when config `admin` is set. */
  adminApp: Express | undefined;
  metrics: Metrics;
  /** Flips /health/deep to critical so Consul drains this node before it stops. */
  startDraining(): void;
  close(): Promise<void>;
}

export interface ServiceOptions {
  now?: () => number;
  random?: () => number;
  /** What this node runs (version, commit, Node): /health/live and st_api_build_info. */
  build?: BuildInfo;
  /** The public port's certificate when it serves HTTPS (api/tls/): its expiry goes into health and metrics. */
  certificate?: { current(): { notAfter: Date } };
}

export function createService(config: Config, logger: Logger, options: ServiceOptions = {}): Service {
  const now = options.now ?? Date.now;
  const metrics = new Metrics();
  const build = options.build ?? readBuildInfo({});
  metrics.buildInfo.set({ version: build.version, commit: build.commit, node: build.node }, 1);
  const certificate = options.certificate;
  if (certificate !== undefined) metrics.trackCertificateExpiry(() => certificate.current().notAfter);

  const pool = config.mysql === undefined ? undefined : createMysqlPool(config.mysql);
  const mysqlStore =
    pool === undefined || config.mysql === undefined ? undefined : new MysqlCatalogStore(pool, config.mysql.queryTimeoutMs, metrics);
  const origin: CatalogStore = mysqlStore ?? new MemoryCatalogStore(demoDataset(now()));

  const redis = redisSource(config, logger, metrics);
  const catalog = redis === undefined ? origin : new CachedCatalogStore({ origin, redis, ttls: config.cache, metrics, logger, now });

  const cdns = cdnsFromConfig(config.cdns);
  const manifests = config.manifests === undefined ? undefined : manifestService(config.manifests, metrics, now);
  metrics.recordSigningKeys(
    cdns.map((cdn) => ({ cdn: cdn.name, key: cdn.signer.activeKey })),
    config.health.keyExpiryWarningDays,
  );
  const tokenizedCdns = cdns.filter((cdn) => cdn.delivery.mode === 'tokenized-manifest').map((cdn) => cdn.name);

  let draining = false;
  const lag = eventLoopProbe(config.health.eventLoopLagWarningMs);
  const probes = [
    drainingProbe(() => draining),
    mysqlProbe(mysqlStore === undefined ? undefined : (timeoutMs) => mysqlStore.ping(timeoutMs)),
    redisProbe(redis),
    signingKeysProbe(
      cdns.map((cdn) => cdn.signer),
      config.health.keyExpiryWarningDays,
      now,
    ),
    ...(certificate === undefined
      ? []
      : [servingCertificateProbe(() => certificate.current().notAfter, config.health.keyExpiryWarningDays, now)]),
    // Only where a CDN uses tokenized manifests: the line shows what this node depends on.
    ...(manifests === undefined || tokenizedCdns.length === 0 ? [] : [manifestOriginsProbe(manifests.cache, tokenizedCdns)]),
    lag,
  ];

  const app = createApp({
    catalog,
    cdns,
    policy: config.playback,
    now,
    grantCache: new GrantCache(now),
    ...(manifests === undefined
      ? {}
      : { manifests: { publicUrl: manifests.publicUrl, tokens: manifests.tokens }, manifestRoute: manifests }),
    corsOrigins: config.cors.allowedOrigins,
    ...(options.random === undefined ? {} : { random: options.random }),
    verifyToken: createTokenVerifier(
      {
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        leewaySeconds: config.auth.leewaySeconds,
        maxTokenBytes: config.auth.maxTokenBytes,
        keys: config.auth.keys.map((key) => ({ kid: key.kid, algorithm: key.algorithm, key: tokenKey(key.algorithm, key.key) })),
      },
      now,
    ),
    // Without Redis there is no shared counter; 0 switches the limit off.
    rateLimiter:
      redis === undefined || config.rateLimit.playsPerMinute === 0
        ? NO_RATE_LIMIT
        : redisRateLimiter(redis, config.rateLimit.playsPerMinute, metrics),
    metrics,
    logger,
    build,
    openapi: loadOpenApiDocument(logger),
    probes,
    probeTimeoutMs: config.health.probeTimeoutMs,
    servesMetrics: config.admin === undefined,
  });
  const adminApp =
    config.admin === undefined
      ? undefined
      : createAdminApp({ logger, metrics, build, probes, probeTimeoutMs: config.health.probeTimeoutMs });

  return {
    app,
    adminApp,
    metrics,
    startDraining: () => {
      draining = true;
    },
    async close() {
      lag.stop();
      await Promise.allSettled([pool?.end(), redis?.close()]);
    },
  };
}

function manifestService(config: NonNullable<Config['manifests']>, metrics: Metrics, now: () => number) {
  return {
    publicUrl: config.publicUrl,
    tokens: new ManifestTokens(config.keys.map((key) => ({ id: key.id, active: key.active, material: key.secret }))),
    cache: new ManifestCache(config, metrics, now),
    renders: new RenderCache(config.maxRenderedBytes),
  };
}

export function cdnsFromConfig(cdns: Config['cdns']): Cdn[] {
  return cdns.map((cdn) => ({
    name: cdn.name,
    origin: cdn.origin,
    weight: cdn.weight,
    pathPrefix: cdn.pathPrefix,
    signer: signerFromConfig(cdn.signer),
    delivery: cdn.delivery,
  }));
}

/**
 * Redis at a fixed address, or the master found by name (Consul DNS) and followed across failovers.
 * Either way the cache, the rate limiter and the probe ask this source for the connection per call.
 */
function redisSource(config: Config, logger: Logger, metrics: Metrics): RedisSource | undefined {
  const redis = config.redis;
  if (redis === undefined) return undefined;
  const client = {
    ...(redis.password === undefined ? {} : { password: redis.password }),
    db: redis.db,
    commandTimeoutMs: redis.commandTimeoutMs,
    connectTimeoutMs: redis.connectTimeoutMs,
  };
  // The name the server's certificate must carry: a fixed host names itself (an IP is checked
  // against the certificate's IP addresses); with discovery the address changes at every failover
  // and the certificate names the service, so the discovery name is checked.
  const tlsFor = (name: string | undefined) => (redis.tls === undefined ? {} : { tls: tlsConnectionOptions(redis.tls, name) });
  if (redis.discovery === undefined) {
    const host = isIP(redis.host) === 0 ? redis.host : undefined;
    return staticRedisSource({ ...client, ...tlsFor(host), host: redis.host, port: redis.port }, logger);
  }
  const discovery = new RedisDiscovery({
    discovery: redis.discovery,
    client: { ...client, ...tlsFor(redis.discovery.name.replace(/\.$/, '')) },
    metrics,
    logger,
  });
  discovery.start();
  return discovery;
}
