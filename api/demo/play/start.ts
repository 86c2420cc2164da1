// The embedded demo's play page and the edge it plays through, in st-api's process (npm start only).
//
//   browser ── GET /demo/ (page, stock hls.js / dash.js), /demo/token, POST /v1/playback-urls ──► st-api :8080
//      └──── every playlist and segment, __token__ cookie ──► verifying edge 127.0.0.1:<free port>
//                                                                 └─► media origin (loopback, ./media)
//
// The edge is doubles/cdn-edge: Akamai EdgeAuth 2.0 checked on every request, written from Akamai's
// documents and cross-checked against Akamai's own token library, never with st-api's signer. st-api
// signs for it in cookie delivery, its default for Akamai: the cookie is host-only for 127.0.0.1
// and a browser sends it to any port of that host, so the page on st-api's port plays from the
// edge's port with nothing but `withCredentials`. Akamai's token covers the path only, so the check
// does not depend on the host name the browser used.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Express, type Router } from 'express';
import { startCdnEdge, type CdnEdge } from '../../../doubles/cdn-edge/server.ts';
import type { EmbeddedDemo } from '../embedded.ts';
import type { StartDemoPlay } from '../play-loader.ts';
import { startMediaOrigin } from './media-origin.ts';
import { PLAYER_LIBRARIES } from './players.ts';

/** The CDN name st-api reports for plays through the local edge. */
export const LOCAL_EDGE_CDN = 'local-edge';
/** A demo token minted by the page lives this long: one sitting. */
const PAGE_TOKEN_SECONDS = 3600;
/** The edge keeps every request it answered; each read of its log trims it to this many (minutes of plays). */
const EDGE_LOG_LIMIT = 1000;

export const startDemoPlay: StartDemoPlay = async (demo) => {
  const missing = Object.values(PLAYER_LIBRARIES).filter((file) => !existsSync(file));
  if (missing.length > 0) return { unavailable: `the stock players are not installed (${missing.join(', ')}): npm ci installs them` };

  const secret = randomBytes(32).toString('hex');
  const origin = await startMediaOrigin();
  let edge: CdnEdge;
  try {
    edge = await startCdnEdge({ scheme: 'akamai', keys: [secret], upstream: origin.baseUrl, carrier: 'cookie' });
  } catch (error) {
    await origin.close();
    throw error;
  }
  const page = pageRouter(demo, edge);
  return {
    cdn: { name: LOCAL_EDGE_CDN, origin: edge.baseUrl, signer: { type: 'akamai', keys: [{ id: 'local-1', active: true, secret }] } },
    edgeUrl: edge.baseUrl,
    withPage(app: Express): Express {
      const outer = express();
      outer.disable('x-powered-by');
      outer.use('/demo', page);
      outer.use(app);
      return outer;
    },
    async close() {
      await edge.stop();
      await origin.close();
    },
  };
};

function pageRouter(demo: EmbeddedDemo, edge: CdnEdge): Router {
  const files = new Map<string, { body: Buffer; type: string }>([
    ['/', { body: readFileSync(join(import.meta.dirname, 'page.html')), type: 'text/html; charset=utf-8' }],
    ...Object.entries(PLAYER_LIBRARIES).map(
      ([path, file]) => [path, { body: readFileSync(file), type: 'text/javascript; charset=utf-8' }] as const,
    ),
  ]);
  // Requests the edge logged before the ones it still holds, so the page can ask for "after n".
  let dropped = 0;

  const router = express.Router({ strict: true });
  router.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    next();
  });
  router.get('/token', (req, res) => {
    // Any name: a viewer the catalog does not know gets a token and is refused a play, as in production.
    const viewer = typeof req.query['viewer'] === 'string' ? req.query['viewer'] : '';
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(viewer)) return void res.status(400).json({ error: 'viewer: 1-32 of a-z 0-9 -' });
    res.json({ token: demo.tokenFor(viewer, PAGE_TOKEN_SECONDS), expiresInSeconds: PAGE_TOKEN_SECONDS });
  });
  router.get('/edge-log', (req, res) => {
    if (edge.requests.length > EDGE_LOG_LIMIT) dropped += edge.requests.splice(0, edge.requests.length - EDGE_LOG_LIMIT).length;
    const after = Number(req.query['after'] ?? -1);
    const requests = edge.requests
      .map((request, index) => ({ seq: dropped + index, ...request }))
      .filter((request) => request.seq > (Number.isFinite(after) ? after : -1));
    res.json({ edge: edge.baseUrl, requests });
  });
  router.get(/.*/, (req, res, next) => {
    const file = files.get(req.path);
    if (file === undefined) return void next();
    res.type(file.type).send(file.body);
  });
  return router;
}
