// The HTTP server in front of the app, with limits that fit a play request: a few headers and a
// body under 4 KB, sent at once by a client that reached this node by DNS round robin. Node's
// defaults (60 s for headers, 300 s for a request, no connection cap) let a slow or silent client
// hold a connection for minutes.
import { createServer, type Server } from 'node:http';
import type { Express } from 'express';

export interface HttpLimits {
  /** A client that has not sent its complete headers by then gets 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** Likewise for the whole request, body included. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection waits for the client's next request. */
  keepAliveTimeoutMs: number;
  /** Connections beyond this are closed at once, so the client tries another address of the record. */
  maxConnections: number;
}

export function createHttpServer(app: Express, limits: HttpLimits): Server {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node enforces the two timeouts only when it sweeps its connections (every 30 s by default),
      // which would add up to 30 s to each; sweep at least four times per headers timeout.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(limits.headersTimeoutMs / 4)),
    },
    app,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}
