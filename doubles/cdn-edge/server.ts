// The verifying edge: an HTTP server on 127.0.0.1 that checks EVERY request the way CloudFront or
// Akamai would (./cloudfront.ts, ./akamai.ts), answers 403 with the reason when the check fails,
// and otherwise reverse-proxies GET/HEAD to the origin with the signing parameters and cookies
// removed (a CDN does not forward them unless configured to). Player tests put it between the
// browser and an nginx origin so that a manifest that plays proves every segment URL was signed.
import { request as httpRequest, createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAkamaiVerifier, type AkamaiAlgorithm } from './akamai.ts';
import { CLOUDFRONT_COOKIES, CLOUDFRONT_QUERY_PARAMS, createCloudFrontVerifier, type CloudFrontPublicKey } from './cloudfront.ts';
import { parseCookieHeader, withoutQueryParams, type Carrier, type ViewerRequest } from './request-parts.ts';

export type CdnEdgeAuth =
  | {
      readonly scheme: 'cloudfront';
      /** Trusted public keys by Key-Pair-Id. */
      readonly keys: Readonly<Record<string, CloudFrontPublicKey>>;
    }
  | {
      readonly scheme: 'akamai';
      /** Hex keys: the token key, then any transition key. */
      readonly keys: readonly string[];
      readonly tokenName?: string;
      readonly algorithm?: AkamaiAlgorithm;
      readonly salt?: string;
    };

export type CdnEdgeOptions = CdnEdgeAuth & {
  /** The origin's base URL, e.g. `http://127.0.0.1:8081` (a path prefix is kept). */
  readonly upstream: string;
  /** Where the token may be. Default 'either' (CloudFront: a signed URL wins over cookies; Akamai: query first). */
  readonly carrier?: Carrier;
  /** Clock for expiry checks, in ms since the epoch. Default Date.now. */
  readonly now?: () => number;
  /**
   * `scheme://host[:port]` the viewer used, for CloudFront's Resource match. Default
   * `http://` + the request's Host header, i.e. what a browser pointed at baseUrl sends.
   */
  readonly publicOrigin?: string;
  /** Upstream timeout. Default 10 s. */
  readonly upstreamTimeoutMs?: number;
};

export interface CdnEdgeRequest {
  readonly method: string;
  /** The request target as received (path and query, signing parameters included). */
  readonly url: string;
  readonly status: number;
  readonly reason?: string;
}

export interface CdnEdge {
  readonly port: number;
  /** `http://127.0.0.1:<port>`: the CDN base URL to give st-api. */
  readonly baseUrl: string;
  /** Every request, in arrival order, with the edge's answer. */
  readonly requests: CdnEdgeRequest[];
  stop(): Promise<void>;
}

type Check = (request: ViewerRequest, nowMs: number) => { allowed: true } | { allowed: false; reason: string };

// RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the edge sets itself.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

export async function startCdnEdge(options: CdnEdgeOptions): Promise<CdnEdge> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error('cdn edge: upstream must be an http:// URL');
  const now = options.now ?? Date.now;
  const timeoutMs = options.upstreamTimeoutMs ?? 10_000;
  let check: Check;
  let signingQuery: ReadonlySet<string>;
  let signingCookies: ReadonlySet<string>;
  if (options.scheme === 'cloudfront') {
    const verifier = createCloudFrontVerifier({ publicKeys: options.keys, carrier: options.carrier ?? 'either' });
    check = (request, nowMs) => verifier(request, nowMs);
    signingQuery = CLOUDFRONT_QUERY_PARAMS;
    signingCookies = CLOUDFRONT_COOKIES;
  } else {
    const tokenName = options.tokenName ?? '__token__';
    const verifier = createAkamaiVerifier({
      keys: options.keys,
      tokenName,
      carrier: options.carrier ?? 'either',
      ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
      ...(options.salt === undefined ? {} : { salt: options.salt }),
    });
    check = (request, nowMs) => verifier(request, nowMs);
    signingQuery = new Set([tokenName]);
    signingCookies = new Set([tokenName]);
  }

  const requests: CdnEdgeRequest[] = [];
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      finish(req, res, 502, `edge error: ${error instanceof Error ? error.message : String(error)}`);
    });
  });

  function record(req: IncomingMessage, status: number, reason?: string): void {
    requests.push({ method: req.method ?? '', url: req.url ?? '', status, ...(reason === undefined ? {} : { reason }) });
  }

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    // Cookie mode needs credentials, and with credentials the origin must be echoed, not `*`.
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'content-length, content-range, accept-ranges, x-cdn-edge-reason',
    };
  }

  function finish(req: IncomingMessage, res: ServerResponse, status: number, reason: string): void {
    record(req, status, reason);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = `${reason}\n`;
    // Error answers carry CORS headers too, so a page sees "403" rather than an opaque CORS error.
    res.writeHead(status, {
      ...corsHeaders(req),
      vary: 'Origin',
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-cdn-edge-reason': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 500),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const target = req.url ?? '/';
    if (method === 'OPTIONS') {
      // A preflight carries no cookies or credentials, so there is nothing to verify.
      const requested = req.headers['access-control-request-headers'];
      res.writeHead(204, {
        ...corsHeaders(req),
        'access-control-allow-methods': 'GET, HEAD, OPTIONS',
        ...(requested === undefined ? {} : { 'access-control-allow-headers': requested }),
        'access-control-max-age': '600',
        vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        allow: 'GET, HEAD, OPTIONS',
      });
      res.end();
      record(req, 204);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD, OPTIONS');
      finish(req, res, 405, `method ${method} not allowed`);
      return;
    }
    if (!target.startsWith('/')) {
      finish(req, res, 400, 'request target must be origin-form (/path?query)');
      return;
    }
    const host = req.headers.host;
    if (options.publicOrigin === undefined && (host === undefined || host === '')) {
      finish(req, res, 400, 'no Host header');
      return;
    }
    const cookies = parseCookieHeader(req.headers.cookie);
    const viewerUrl = `${options.publicOrigin ?? `http://${host ?? ''}`}${target}`;
    const remote = req.socket.remoteAddress;
    const verdict = check({ url: viewerUrl, cookies, ...(remote === undefined ? {} : { clientIp: remote }) }, now());
    if (!verdict.allowed) {
      finish(req, res, 403, `denied: ${verdict.reason}`);
      return;
    }
    await proxy(req, res, target, cookies);
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, target: string, cookies: Map<string, string>): Promise<void> {
    const stripped = withoutQueryParams(target, signingQuery);
    const basePath = upstream.pathname.replace(/\/$/, '');
    const headers: IncomingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (hopByHop.has(name) || name === 'host' || name === 'cookie' || value === undefined) continue;
      headers[name] = value;
    }
    headers.host = upstream.host;
    const keptCookies = [...cookies].filter(([name]) => !signingCookies.has(name)).map(([name, value]) => `${name}=${value}`);
    if (keptCookies.length > 0) headers.cookie = keptCookies.join('; ');

    await new Promise<void>((resolve) => {
      const outgoing = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port === '' ? 80 : Number(upstream.port),
          method: req.method,
          path: basePath + stripped,
          headers,
          agent: false,
        },
        (incoming) => {
          const status = incoming.statusCode ?? 502;
          const responseHeaders: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (hopByHop.has(name) || name.startsWith('access-control-') || value === undefined) continue;
            responseHeaders[name] = value;
          }
          const cors = corsHeaders(req);
          if (Object.keys(cors).length > 0) {
            const vary = incoming.headers.vary;
            responseHeaders['vary'] = vary === undefined || vary === '' ? 'Origin' : `${vary}, Origin`;
          }
          res.writeHead(status, { ...responseHeaders, ...cors });
          record(req, status);
          incoming.pipe(res);
          incoming.once('end', resolve);
          incoming.once('error', () => {
            res.destroy();
            resolve();
          });
          res.once('close', () => {
            incoming.destroy();
            resolve();
          });
        },
      );
      outgoing.setTimeout(timeoutMs, () => outgoing.destroy(new Error(`upstream gave no answer within ${timeoutMs} ms`)));
      outgoing.once('error', (error) => {
        finish(req, res, 502, `upstream error: ${error.message}`);
        resolve();
      });
      outgoing.end();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}
