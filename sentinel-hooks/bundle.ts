// A build step (`npm run build`), not part of the running program: sentinel-hooks as one
// self-contained file, dist/sentinel-hooks.mjs, which Sentinel's wrappers and the reconcile timer
// run. Sentinel starts a process for every hook call, a dozen or more per failover, just when
// client-reconfig races the failover; one file starts in about half the CPU time of the compiled
// tree (0.1 s against 0.2 s on the 2-core test machine). The failover tests run this same file.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

export async function bundleHooks(outfile: string): Promise<void> {
  await bundleProgram('sentinel-hooks/main.ts', outfile);
}

/** One program (`entry`, relative to the repository) as one self-contained ESM file. */
export async function bundleProgram(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
    // Dependencies such as pino and zod are CommonJS inside; an ESM bundle needs a require for them.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundleHooks(resolve(process.argv[2] ?? join(ROOT, 'dist', 'sentinel-hooks.mjs')));
}
