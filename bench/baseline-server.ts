// The baseline: an Express 5 "hello world" on the same route, run as its own process exactly like
// st-api. It parses the same JSON body (express.json) and answers a small fixed JSON document of
// about the same size as a playback answer, with no auth, no I/O and no signing: the ceiling that
// Node + Express + this machine + this load generator allow.
// With BASELINE_TLS_CERT and BASELINE_TLS_KEY (PEM files) it serves HTTPS as st-api does with
// listen.tls: node:https, HTTP/1.1 by ALPN, TLS 1.2 minimum.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import express from 'express';
import { announceAndStopOnSignal } from './serve.ts';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const answer = {
  url: 'https://edge.example.com/vod/tt0000001/dash/1080p/manifest.mpd?token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  protocol: 'dash',
  quality: '1080p',
  cdn: 'baseline',
  expiresAt: '2030-01-01T00:00:00.000Z',
};
app.post('/v1/playback-urls', express.json({ limit: '4kb' }), (_req, res) => {
  res.set('Cache-Control', 'no-store').json(answer);
});

const { BASELINE_TLS_CERT: certFile, BASELINE_TLS_KEY: keyFile } = process.env;
const server =
  certFile !== undefined && keyFile !== undefined
    ? createServer(
        { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] },
        app,
      ).listen(0, '127.0.0.1')
    : app.listen(0, '127.0.0.1');
await announceAndStopOnSignal(server, 'baseline', { dropConnections: (s) => s.closeIdleConnections(), graceMs: 5000 });
