// One log line per request, so "viewer X cannot play" is answered from the log and not only from
// aggregates. The line carries the request id, method, route pattern, status, problem code and
// latency; a play adds the viewer's id and the content id. Never headers (the token, cookies), never
// the raw URL (a tokenized manifest's path is a credential), never a body beyond the content id.
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Viewer } from './auth/client-token.ts';
import type { ProblemCode } from './errors.ts';
import type { Logger } from './logger.ts';
import { CONTENT_ID_PATTERN } from './playback/request.ts';

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** A caller's id is kept when it is a plain printable token of sane length (a UUID, a trace id); else a new one. */
const SANE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Consul checks every 5 s and Prometheus scrapes: their lines would drown the rest at info. */
const QUIET_ROUTES = new Set(['/health/live', '/health/deep', '/metrics']);

/** What the problem handler and the routes leave for the access log (res.locals). */
export interface AccessLocals {
  requestId?: string;
  problemCode?: ProblemCode;
  viewer?: Viewer;
}

export function requestIdOf(res: Response): string | undefined {
  return (res.locals as AccessLocals).requestId;
}

export interface AccessLogOptions {
  /** 'admin': the operators' listener (config `admin`); its lines say so and stay at debug like health and metrics. */
  listener?: 'public' | 'admin';
}

export function accessLog(logger: Logger, options: AccessLogOptions = {}): RequestHandler {
  const admin = options.listener === 'admin';
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
    (res.locals as AccessLocals).requestId = requestId;
    res.set(REQUEST_ID_HEADER, requestId);
    res.once('close', () => {
      const locals = res.locals as AccessLocals;
      // The matched pattern, never the URL itself.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const line = {
        ...(admin ? { listener: 'admin' } : {}),
        reqId: requestId,
        method: req.method,
        route,
        status: res.statusCode,
        ...(locals.problemCode === undefined ? {} : { code: locals.problemCode }),
        ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
        ...(locals.viewer === undefined ? {} : { userId: locals.viewer.userId }),
        ...playedContent(req),
        // The client went away before the whole answer was sent.
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      if (admin || QUIET_ROUTES.has(route)) logger.debug(line, 'request');
      else if (res.statusCode >= 500) logger.warn(line, 'request');
      else logger.info(line, 'request');
    });
    next();
  };
}

/** The content id of a play, only once it looks like one (never arbitrary body text). */
function playedContent(req: Request): { contentId?: string } {
  const contentId = (req.body as { contentId?: unknown } | undefined)?.contentId;
  return typeof contentId === 'string' && CONTENT_ID_PATTERN.test(contentId) ? { contentId } : {};
}
