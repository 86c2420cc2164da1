// Renderings of tokenized manifests, ready to write to a socket. Every viewer whose URL was issued
// in the same slot gets the same CDN token, hence the same bytes: the profile of a 1,200-segment
// playlist showed the per-request cost was turning the text into bytes again and again (and its
// garbage), so each rendering is kept as a Buffer, with its gzip (made once, off the event loop:
// a CloudFront token on every line makes a 600 KB playlist that compresses to a few percent).
// Bounded by bytes, least recently used first.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import type { CompiledManifest } from './tokenize.ts';

const gzipAsync = promisify(gzip);

export interface Rendering {
  identity: Buffer;
  gzip: Promise<Buffer>;
}

export class RenderCache {
  readonly #renderings: LRUCache<string, Rendering>;

  constructor(maxBytes: number) {
    // A gzip is counted at a tenth of the text: it is only known once the compression is done.
    this.#renderings = new LRUCache({
      maxSize: maxBytes,
      sizeCalculation: (rendering) => Math.max(1, Math.ceil(rendering.identity.length * 1.1)),
    });
  }

  get(manifest: CompiledManifest, query: string): Rendering {
    const key = `${manifest.id}\n${query}`;
    let rendering = this.#renderings.get(key);
    if (rendering === undefined) {
      const identity = Buffer.from(manifest.render(query), 'utf8');
      const compressed = gzipAsync(identity, { level: 6 });
      compressed.catch(() => undefined); // observed by whoever asks for it
      rendering = { identity, gzip: compressed };
      this.#renderings.set(key, rendering);
    }
    return rendering;
  }
}
