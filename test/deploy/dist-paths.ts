// Which dist/ paths `npm run build` produces: the units, the image and the compose stack may name no other.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../watcher/harness.ts';

/**
 * After `npm run build`, dist/<x>.js exists when <x>.ts is in a folder tsconfig.build.json compiles,
 * and dist/sentinel-hooks.mjs because the build script bundles it (the one output it names).
 */
export function builtByNpmRunBuild(distPath: string): boolean {
  const relative = distPath.replace(/^\/opt\/st-api\//, '');
  const build = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { build: string } }).scripts.build;
  if (relative.endsWith('.mjs')) return build.split(' ').includes(relative);
  const { include, exclude = [] } = JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
    exclude?: string[];
  };
  const source = relative.replace(/^dist\//, '').replace(/\.js$/, '.ts');
  return include.some((folder) => source.startsWith(`${folder}/`)) && !exclude.includes(source) && existsSync(join(REPO, source));
}
