// The HTTP server in front of the app, with limits that fit a play request: a few headers and a
// body under 4 KB, sent at once by a client that reached this node by DNS round robin. Node's
// defaults (60 s for headers, 300 s for a request, no connection cap) let a slow or silent client
// hold a connection for minutes.
//
// With a serving certificate it is an HTTPS server (HTTP/1.1, TLS 1.2 or newer) whose certificate
// follows the files: each accepted rotation replaces the secure context, so new handshakes get the
// new certificate and open connections finish on the old one.
import { createServer, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Express } from 'express';
import { secureContextOptions, type TlsMinVersion } from './tls/certificate-pair.ts';
import type { ServingCertificate } from './tls/serving-certificate.ts';

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

export interface HttpsOptions {
  readonly certificate: ServingCertificate;
  readonly minVersion: TlsMinVersion;
}

export function createHttpServer(app: Express, limits: HttpLimits, https?: HttpsOptions): Server | HttpsServer {
  const options: ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node enforces the two timeouts only when it sweeps its connections (every 30 s by default),
    // which would add up to 30 s to each; sweep at least four times per headers timeout.
    connectionsCheckingInterval: Math.min(1000, Math.ceil(limits.headersTimeoutMs / 4)),
  };
  let server: Server | HttpsServer;
  if (https === undefined) {
    server = createServer(options, app);
  } else {
    const { certificate, minVersion } = https;
    const tlsServer = createHttpsServer(
      {
        ...options,
        ...secureContextOptions(certificate.current(), minVersion),
        ALPNProtocols: ['http/1.1'],
        // The headers timeout starts once the handshake is done; a client stuck in the handshake
        // would otherwise hold its connection for Node's default 120 s.
        handshakeTimeout: limits.headersTimeoutMs,
      },
      app,
    );
    certificate.onChange((pair) => tlsServer.setSecureContext(secureContextOptions(pair, minVersion)));
    server = tlsServer;
  }
  server.maxConnections = limits.maxConnections;
  return server;
}
