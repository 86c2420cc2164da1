// Serves the player page and the stock player builds from node_modules, in
// this process (nothing to leak), on its own origin so the media hosts are
// cross-origin to it exactly as a customer's web page is to the CDN.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLAYER_LIBRARIES } from '../../api/demo/play/players.ts';
import { LOOPBACK } from '../../testkit/processes.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface PageServer {
  readonly port: number;
  /** Any host works; browser.ts maps *.st.test to 127.0.0.1 and asks for player.st.test. */
  pageUrl(host?: string): string;
  close(): Promise<void>;
}

export async function startPageServer(): Promise<PageServer> {
  const files = new Map<string, { body: Buffer; type: string }>();
  files.set('/player.html', { body: readFileSync(join(HERE, 'page', 'player.html')), type: 'text/html; charset=utf-8' });
  for (const [path, file] of Object.entries(PLAYER_LIBRARIES)) {
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch (error) {
      throw new Error(`player page: cannot read ${file} (npm devDependencies hls.js and dashjs)`, { cause: error });
    }
    files.set(path, { body, type: 'text/javascript; charset=utf-8' });
  }

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    const file = files.get(path);
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-store' }).end(file.body);
  });
  // Keep-alive sockets would hold close() open until they time out.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port: 0 }, resolve);
  });
  server.unref();
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    pageUrl: (host = 'player.st.test') => `http://${host}:${port}/player.html`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
