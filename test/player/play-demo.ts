// `npm run demo:play`: see what st-api returns play, on your machine, in the first minutes.
// The same pieces as test/player/playback.test.ts: real media (ffmpeg), stock nginx running the
// edge configuration shipped in deploy/edge/nginx (path token), st-api with its embedded demo
// catalog, and a page with a stock hls.js / dash.js. Everything listens on 127.0.0.1 only.
// Needs Debian's nginx and ffmpeg (`bash test/ensure-system-packages.sh` as root installs them).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { createLogger } from '../../api/logger.ts';
import { createService } from '../../api/service.ts';
import { startNginx } from '../../testkit/nginx.ts';
import { generateMedia } from './media.ts';
import { PLAYER_LIBRARIES } from './page-server.ts';

const HERE = import.meta.dirname;
const API_PORT = Number(process.env['ST_API_PORT'] ?? 8080);
const PAGE_PORT = Number(process.env['ST_DEMO_PAGE_PORT'] ?? 8090);

for (const binary of ['nginx', 'ffmpeg']) {
  try {
    execFileSync('sh', ['-c', `command -v ${binary} || test -x /usr/sbin/${binary}`], { stdio: 'ignore' });
  } catch {
    process.stderr.write(
      `demo:play needs ${binary}: run \`bash test/ensure-system-packages.sh\` as root, or apt-get install nginx ffmpeg\n`,
    );
    process.exit(1);
  }
}

const work = join(tmpdir(), `st-api-play-demo-${process.pid}`);
mkdirSync(work, { recursive: true });
process.stderr.write('demo:play: making the demo titles with ffmpeg (cached after the first run)…\n');
// The demo catalog's ladders without 2160p (a web or phone play never reaches it).
await generateMedia(join(work, 'media'), [
  { id: 'tt-demo-0001', rungs: [1080, 720, 480] },
  { id: 'tt-demo-0002', rungs: [1080, 720, 480] },
  { id: 'tt-demo-0003', rungs: [720, 480] },
  { id: 'tt-demo-0004', rungs: [1080, 480] },
]);

const secret = randomBytes(24).toString('base64url');
const edge = await startNginx(({ port, dir }) => {
  symlinkSync(join(HERE, '..', '..', 'deploy', 'edge', 'nginx'), join(dir, 'st-api'));
  return `
    include st-api/st-vod-http.conf;
    server {
      listen 127.0.0.1:${port};
      set $st_vod_root ${join(work, 'media')};
      set $st_vod_secret "${secret}";
      include st-api/st-vod-path-token.conf;
    }`;
});

const demo = embeddedDemo();
const pageOrigin = `http://127.0.0.1:${PAGE_PORT}`;
const config = parseConfig(
  {
    ...demo.rawConfig,
    listen: { host: '127.0.0.1', port: API_PORT },
    cors: { allowedOrigins: [pageOrigin] },
    cdns: [{ name: 'local-nginx', origin: edge.baseUrl, signer: { type: 'nginx', keys: [{ id: 'demo', active: true, secret }] } }],
  },
  process.env,
);
const service = createService(config, createLogger({ level: 'warn', program: 'st-api' }));
const api = service.app.listen(API_PORT, '127.0.0.1');
await once(api, 'listening');
const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

// The page: pick a viewer and a title, ask st-api as a web app would, hand the URL to a stock player.
// /token mints a demo viewer token, standing in for the platform's auth service.
const files: Record<string, { body: Buffer; type: string }> = {
  '/': { body: readFileSync(join(HERE, 'page', 'demo.html')), type: 'text/html; charset=utf-8' },
  ...Object.fromEntries(
    Object.entries(PLAYER_LIBRARIES).map(([path, file]) => [path, { body: readFileSync(file), type: 'text/javascript; charset=utf-8' }]),
  ),
};
const page = createServer((req, res) => {
  const url = new URL(req.url ?? '/', pageOrigin);
  if (url.pathname === '/token') {
    const user = url.searchParams.get('user') ?? '';
    if (!/^[a-z-]{1,32}$/.test(user)) return void res.writeHead(400).end();
    return void res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: demo.tokenFor(user, 3600), api: apiUrl }));
  }
  const file = files[url.pathname];
  if (file === undefined) return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
});
page.listen(PAGE_PORT, '127.0.0.1');
await once(page, 'listening');

process.stdout.write(
  [
    '',
    `st-api ${apiUrl}  ->  nginx edge ${edge.baseUrl} (deploy/edge/nginx, path token)  ->  media made by ffmpeg`,
    '',
    `Open ${pageOrigin}/ in a browser on this machine and press Play.`,
    `(On a remote machine, forward the three ports: ssh -L ${PAGE_PORT}:127.0.0.1:${PAGE_PORT} -L ${new URL(apiUrl).port}:127.0.0.1:${new URL(apiUrl).port} -L ${edge.port}:127.0.0.1:${edge.port} <host>)`,
    '',
    'Or by hand:',
    `  curl -sS -X POST ${apiUrl}/v1/playback-urls -H "Authorization: Bearer $(curl -sS '${pageOrigin}/token?user=demo-user' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')" \\`,
    `    -H 'Content-Type: application/json' -d '{"contentId":"tt-demo-0001","device":"web","protocol":"hls"}'`,
    '  and open the "url" it returns in any HLS player (ffplay, VLC, Safari).',
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'),
);

const stop = async () => {
  api.closeAllConnections();
  api.close();
  page.closeAllConnections();
  page.close();
  await Promise.allSettled([service.close(), edge.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
