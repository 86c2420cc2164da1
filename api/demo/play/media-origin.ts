// The demo's media origin: what deploy/edge/nginx/st-vod-origin.conf does for nginx, in Node, so a
// laptop without nginx plays too. It serves the media shipped in ./media (origin storage layout, see
// test/player/media.ts) to the verifying edge in front of it and to nothing else: it listens on
// loopback and checks no token, exactly like the origin a CDN fetches from.
//
//   /vod/<title>/<protocol>/<ceiling>/master.m3u8 | manifest.mpd   -> <root>/<title>/<protocol>/<ceiling>/<file>
//   /vod/<title>/<protocol>/<ceiling>/<rung>/<file>                -> <root>/<title>/<rung>/<file>, 403 above the ceiling
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const DEMO_TITLE = 'tt-demo-0001';
export const DEMO_MEDIA_DIR = join(import.meta.dirname, 'media');

const MANIFEST = /^\/vod\/([A-Za-z0-9][A-Za-z0-9_-]{0,63})\/(hls|dash)\/([0-9]{3,4})p\/(master\.m3u8|manifest\.mpd)$/;
const RUNG_FILE =
  /^\/vod\/([A-Za-z0-9][A-Za-z0-9_-]{0,63})\/(?:hls|dash)\/([0-9]{3,4})p\/([0-9]{3,4})p\/([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  m3u8: 'application/vnd.apple.mpegurl',
  mpd: 'application/dash+xml',
  mp4: 'video/mp4',
  m4s: 'video/mp4',
};

export interface MediaOrigin {
  /** `http://127.0.0.1:<port>`: the edge's upstream. */
  readonly baseUrl: string;
  close(): Promise<void>;
}

/** Where a public path is stored, or why it is not served. */
export function storedFile(root: string, path: string): { file: string } | { status: 403 | 404 } {
  const manifest = MANIFEST.exec(path);
  if (manifest !== null) {
    const [, title = '', protocol = '', ceiling = '', file = ''] = manifest;
    return { file: join(root, title, protocol, `${ceiling}p`, file) };
  }
  const rungFile = RUNG_FILE.exec(path);
  if (rungFile !== null) {
    const [, title = '', ceiling = '', rung = '', file = ''] = rungFile;
    // What keeps an SD token from an HD segment: the token covers the ceiling's directory only.
    if (Number(rung) > Number(ceiling)) return { status: 403 };
    return { file: join(root, title, `${rung}p`, file) };
  }
  return { status: 404 };
}

export async function startMediaOrigin(root: string = DEMO_MEDIA_DIR): Promise<MediaOrigin> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    const stored = storedFile(root, path);
    if ('status' in stored) return void res.writeHead(stored.status).end();
    readFile(stored.file).then(
      (body) => {
        const type = CONTENT_TYPES[stored.file.slice(stored.file.lastIndexOf('.') + 1)] ?? 'application/octet-stream';
        res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
