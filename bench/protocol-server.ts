// HTTP/1.1 against HTTP/2 over TLS, nothing else different: the same handler (read the JSON body,
// parse it, answer the baseline's fixed JSON document) behind node:https with ALPN http/1.1
// (PROTOCOL=h1, what st-api serves) or node:http2's secure server with ALPN h2 (PROTOCOL=h2).
// Express does not run on node:http2's compatibility API, hence a plain handler in both.
// Certificate and key from PROTOCOL_TLS_CERT and PROTOCOL_TLS_KEY.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer } from 'node:https';
import { announceAndStopOnSignal } from './serve.ts';

const answer = JSON.stringify({
  url: 'https://edge.example.com/vod/tt0000001/dash/1080p/manifest.mpd?token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  protocol: 'dash',
  quality: '1080p',
  cdn: 'baseline',
  expiresAt: '2030-01-01T00:00:00.000Z',
});

function handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(answer);
  });
}

const protocol = process.env['PROTOCOL'];
const certFile = process.env['PROTOCOL_TLS_CERT'];
const keyFile = process.env['PROTOCOL_TLS_KEY'];
if ((protocol !== 'h1' && protocol !== 'h2') || certFile === undefined || keyFile === undefined)
  throw new Error('protocol-server: PROTOCOL=h1|h2, PROTOCOL_TLS_CERT and PROTOCOL_TLS_KEY are required');
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' as const };
if (protocol === 'h1') {
  const server = createServer({ ...tls, ALPNProtocols: ['http/1.1'] }, handle).listen(0, '127.0.0.1');
  await announceAndStopOnSignal(server, 'protocol-server', { dropConnections: (s) => s.closeIdleConnections(), graceMs: 5000 });
} else {
  const server = createSecureServer(tls, handle).listen(0, '127.0.0.1');
  // An HTTP/2 session has no idle-connection close; the grace period ends it.
  await announceAndStopOnSignal(server, 'protocol-server', { dropConnections: () => undefined, graceMs: 2000 });
}
