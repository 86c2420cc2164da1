// The HTTP surface: routes, the problem+json error handler, request metrics. No I/O is created
// here; main.ts (or a test) builds the dependencies and passes them in.
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import { tlsFailure } from '../common/tls-failure.ts';
import { accessLog, requestIdOf, type AccessLocals } from './access-log.ts';
import type { BuildInfo } from './build-info.ts';
import { AppError, toAppError } from './errors.ts';
import type { Probe } from './health/deep-health.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { healthRoutes } from './routes/health.ts';
import { manifestRoutes, type ManifestRouteDeps } from './routes/manifests.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { openapiRoutes, type OpenApiDocument } from './routes/openapi.ts';
import { playbackRoutes, type PlaybackRouteDeps } from './routes/playback.ts';

export interface AppDeps extends PlaybackRouteDeps {
  /** Tokenized-manifest delivery; absent when no CDN uses it. */
  manifestRoute?: Omit<ManifestRouteDeps, 'cdns' | 'policy' | 'metrics' | 'now'>;
  logger: Logger;
  /** What this node runs, for /health/live. */
  build: BuildInfo;
  /** api/openapi.yaml, served as /openapi.json; absent = no such route. */
  openapi?: OpenApiDocument | undefined;
  probes: readonly Probe[];
  probeTimeoutMs: number;
  /** False when an admin listener serves /metrics instead (config `admin`): then 404 here. Default true. */
  servesMetrics?: boolean;
}

/** What the admin listener serves: metrics and health, nothing a client uses. */
export type AdminAppDeps = Pick<AppDeps, 'logger' | 'metrics' | 'build' | 'probes' | 'probeTimeoutMs'>;

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);

  app.use(accessLog(deps.logger));
  app.use(recordRequestMetrics(deps.metrics));
  app.use(noSniff);
  app.use(healthRoutes(deps));
  if (deps.servesMetrics ?? true) app.use(metricsRoutes(deps.metrics));
  app.use(openapiRoutes(deps.openapi));
  app.use(playbackRoutes(deps));
  if (deps.manifestRoute !== undefined)
    app.use(manifestRoutes({ ...deps.manifestRoute, cdns: deps.cdns, policy: deps.policy, metrics: deps.metrics, now: deps.now }));
  app.use(() => {
    throw new AppError('NOT_FOUND');
  });
  app.use(problemHandler(deps));
  return app;
}

/**
 * The admin listener's app (config `admin`): the same health answers as the public port, backed by
 * the same probes (so a draining node is critical on both), and /metrics; any other path is 404.
 */
export function createAdminApp(deps: AdminAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  app.use(accessLog(deps.logger, { listener: 'admin' }));
  app.use(recordRequestMetrics(deps.metrics));
  app.use(noSniff);
  app.use(healthRoutes(deps));
  app.use(metricsRoutes(deps.metrics));
  app.use(() => {
    throw new AppError('NOT_FOUND');
  });
  app.use(problemHandler(deps));
  return app;
}

/** Every answer is JSON, problem+json, a playlist or plain text: never to be sniffed as anything else. */
const noSniff: RequestHandler = (_req, res, next) => {
  res.set('X-Content-Type-Options', 'nosniff');
  next();
};

function recordRequestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // The matched route pattern, never the raw URL: bounded label cardinality.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.httpDuration.observe(
        { method: req.method, route, status: String(res.statusCode) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    next();
  };
}

function problemHandler(deps: { metrics: Metrics; logger: Logger }): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const appError = toAppError(error);
    (res.locals as AccessLocals).problemCode = appError.code;
    const reqId = requestIdOf(res);
    // The route pattern, not the path: a tokenized manifest's path is a credential.
    const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
    if (appError.code === 'INTERNAL_ERROR') {
      deps.logger.error({ err: error, reqId, method: req.method, route }, 'unhandled error');
    } else if (appError.status >= 500) {
      // Operational: log the dependency's error code only, never its message (it may quote SQL).
      deps.logger.warn({ code: appError.code, cause: describeCause(appError.cause), reqId, method: req.method, route }, appError.message);
    }
    if (res.headersSent) return;
    // A refused request whose body is still arriving: close once answered instead of reading a body
    // nobody will use (a client announcing a huge body would otherwise hold the connection).
    if (bodyStillArriving(req)) res.set('Connection', 'close');
    if (appError.retryAfterSeconds !== undefined) res.set('Retry-After', String(appError.retryAfterSeconds));
    if (appError.status === 401) res.set('WWW-Authenticate', 'Bearer realm="st-api"');
    res
      .status(appError.status)
      .set('Cache-Control', 'no-store')
      .type('application/problem+json')
      .send(JSON.stringify(appError.toProblem()));
  };
}

function bodyStillArriving(req: Request): boolean {
  const announcesBody = (req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined;
  return announcesBody && !req.complete;
}

function describeCause(cause: unknown): string | undefined {
  const tls = tlsFailure(cause);
  if (tls !== undefined) return `tls:${tls}`;
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
