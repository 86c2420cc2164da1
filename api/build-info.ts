// What this node runs: the package version, the commit it was built from, the Node version. Shown in
// /health/live and as st_api_build_info, so a blue/green step can confirm an upgrade took.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface BuildInfo {
  version: string;
  commit: string;
  node: string;
}

/** Label-safe and line-safe: a commit id, a tag or a short build name; anything else is not shown. */
const SAFE = /^[A-Za-z0-9._+-]{1,64}$/;

/**
 * version: package.json's, found above this module (api/ under tsx, dist/api/ in the image);
 * commit: ST_API_COMMIT (the image bakes it in at build: --build-arg ST_API_COMMIT=$(git rev-parse HEAD)),
 * else a file named COMMIT beside that package.json (a release unpacked to /opt/st-api without a container).
 */
export function readBuildInfo(env: NodeJS.ProcessEnv, from: string = import.meta.dirname): BuildInfo {
  const found = findPackage(from);
  const fromEnv = env['ST_API_COMMIT'];
  const commit = fromEnv !== undefined && fromEnv !== '' ? fromEnv : found === undefined ? undefined : commitFile(found.dir);
  return {
    version: found?.version ?? 'unknown',
    commit: commit !== undefined && SAFE.test(commit) ? commit : 'unknown',
    node: process.version,
  };
}

function findPackage(from: string): { dir: string; version: string } | undefined {
  let dir = from;
  for (let level = 0; level < 4; level += 1) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const { name, version } = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (name === 'st-api' && typeof version === 'string' && SAFE.test(version)) return { dir, version };
      } catch {
        // Not ours or not JSON: keep looking upwards.
      }
    }
    dir = dirname(dir);
  }
  return undefined;
}

function commitFile(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, 'COMMIT'), 'utf8').trim();
  } catch {
    return undefined;
  }
}
