// An HTTPS client for tests that trust a test CA (fetch() only trusts the system's roots) and need to
// see the TLS side of each answer: the certificate the server presented and whether the connection
// was a kept-alive one.
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface HttpsAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Serial of the certificate this connection's handshake presented (upper-case hex). */
  readonly serial: string;
  /** The TLS version negotiated, e.g. `TLSv1.3`. */
  readonly protocol: string;
  /** True when the agent sent this request on a connection it had kept alive. */
  readonly reusedSocket: boolean;
  readonly socket: TLSSocket;
}

export interface HttpsRequestOptions {
  /** PEM of the CA to trust (and nothing else). */
  readonly ca: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** A keep-alive agent to reuse connections; false (default): a new connection per request. */
  readonly agent?: Agent | false;
  readonly servername?: string;
  readonly timeoutMs?: number;
}

export function httpsRequest(url: string, options: HttpsRequestOptions): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...options.headers,
          ...(options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(options.body)) }),
        },
        ca: options.ca,
        agent: options.agent ?? false,
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber.toUpperCase();
        const protocol = socket.getProtocol() ?? '';
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, serial, protocol, reusedSocket: req.reusedSocket, socket }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
