// POST /v1/playback-urls: authenticate, validate at the edge, hand over to the use case, answer.
import cors from 'cors';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { Viewer } from '../auth/client-token.ts';
import { hostWithinDomain, setCookieHeader } from '../delivery/delivery.ts';
import { AppError, toAppError } from '../errors.ts';
import { playbackUseCase, type PlaybackDeps } from '../playback/issue-playback-url.ts';
import { playbackRequestSchema } from '../playback/request.ts';

/** Bodies are a few small fields; anything larger is refused before it is read into memory. */
const BODY_LIMIT_BYTES = 4096;

export interface PlaybackRouteDeps extends PlaybackDeps {
  /** Browser origins allowed to call this route (CORS); empty = none. */
  corsOrigins?: readonly string[];
  verifyToken: (authorization: string | undefined) => Viewer;
}

const PLAYBACK_URLS = '/v1/playback-urls';
const ALLOW = 'POST, OPTIONS';

export function playbackRoutes(deps: PlaybackRouteDeps): Router {
  const router = express.Router();
  const playback = playbackUseCase(deps);
  const allowed = new Set(deps.corsOrigins ?? []);
  if (allowed.size > 0) {
    // Credentials: in cookie delivery the browser must store the CDN cookies this route sets.
    const withCors = cors({
      origin: true,
      credentials: true,
      methods: ['POST'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
      exposedHeaders: ['Retry-After', 'X-Request-Id'],
      maxAge: 600,
    });
    // Only this exact path, and only for a listed Origin: anyone else gets no CORS header at all,
    // which is all a browser needs to refuse the call.
    router.all(PLAYBACK_URLS, (req, res, next) => {
      res.vary('Origin');
      if (req.method === 'OPTIONS') res.set('Allow', ALLOW);
      if (allowed.has(req.headers.origin ?? '')) withCors(req, res, next);
      else next();
    });
  }
  // OPTIONS is a method this resource supports (RFC 9110 §9.3.7): a preflight from an origin not
  // listed, or a plain OPTIONS, is answered 204 with Allow and no CORS header, never 405.
  router.options(PLAYBACK_URLS, (_req, res) => {
    res.set('Allow', ALLOW).status(204).end();
  });

  const authenticate: RequestHandler = (req, res, next) => {
    res.locals.viewer = deps.verifyToken(req.headers.authorization);
    next();
  };

  // Judged on the announced length, before authentication and before a byte of the body is read:
  // the body parser would read (and drop) a too-large body to its end before answering.
  const refuseLargeBody: RequestHandler = (req, _res, next) => {
    if (Number(req.headers['content-length'] ?? 0) > BODY_LIMIT_BYTES)
      throw new AppError('BODY_TOO_LARGE', { detail: `The body must not exceed ${BODY_LIMIT_BYTES} bytes` });
    next();
  };

  router.post(PLAYBACK_URLS, refuseLargeBody, authenticate, express.json({ limit: BODY_LIMIT_BYTES, strict: true }), async (req, res) => {
    if (!req.is('application/json')) throw new AppError('UNSUPPORTED_MEDIA_TYPE');
    const parsed = playbackRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((issue) => ({ path: issue.path.join('.') || '(body)', message: issue.message }));
      // detail repeats the messages for clients that show only it; each already names its field.
      throw new AppError('INVALID_REQUEST', { detail: errors.map((error) => error.message).join('; '), errors });
    }
    const url = await playback.issue(res.locals.viewer as Viewer, parsed.data);
    // A browser stores a cookie only for a domain its request went to (or a parent of it): when the
    // CDN's cookie domain is a parent of this host, the web player gets the cookies by itself.
    for (const cookie of url.cookies ?? []) {
      if (hostWithinDomain(req.hostname, cookie.domain)) res.append('Set-Cookie', setCookieHeader(cookie));
    }
    res.set('Cache-Control', 'no-store').json(url);
  });

  router.all(PLAYBACK_URLS, (_req, res) => {
    res.set('Allow', ALLOW);
    throw new AppError('METHOD_NOT_ALLOWED');
  });

  // Every refusal on this route is a refused play, counted by the use case; app.ts then answers it.
  const countRefusal: ErrorRequestHandler = (error, _req, _res, next) => {
    playback.refused(toAppError(error).code);
    next(error);
  };
  router.use(PLAYBACK_URLS, countRefusal);

  return router;
}
