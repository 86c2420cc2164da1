// The manifest origin for the tokenized-manifest bench: a static HTTP server on loopback, in its own
// process, serving the synthetic playlists and MPDs that bench/manifests.ts wrote into ORIGIN_DIR.
// GET and HEAD only, files under ORIGIN_DIR only; it counts requests per path (GET /__hits) so the
// bench can show that st-api fetched each manifest once.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, resolve, sep } from 'node:path';
import { announceAndStopOnSignal } from './serve.ts';

const root = resolve(process.env.ORIGIN_DIR ?? '');
if (process.env.ORIGIN_DIR === undefined || process.env.ORIGIN_DIR === '') throw new Error('ORIGIN_DIR is not set');
const TYPES: Record<string, string> = { m3u8: 'application/vnd.apple.mpegurl', mpd: 'application/dash+xml' };
const hits = new Map<string, number>();

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path === '/__hits') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(hits)));
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  hits.set(path, (hits.get(path) ?? 0) + 1);
  const file = resolve(join(root, decodeURIComponent(path)));
  const type = TYPES[path.slice(path.lastIndexOf('.') + 1)];
  if (!file.startsWith(root + sep) || type === undefined) {
    res.writeHead(404).end();
    return;
  }
  readFile(file).then(
    (body) => res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body),
    () => res.writeHead(404).end(),
  );
});
server.listen(0, '127.0.0.1');
await announceAndStopOnSignal(server, 'origin', { dropConnections: (s) => s.closeAllConnections(), graceMs: 2000 });
