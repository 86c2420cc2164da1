// The stock player builds the demo page and the player tests load, by public path. UMD builds:
// they set window.Hls and window.dashjs. Both are dev dependencies: the built image has neither.
import { join } from 'node:path';

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

export const PLAYER_LIBRARIES: Readonly<Record<string, string>> = {
  '/lib/hls.min.js': join(REPO_ROOT, 'node_modules', 'hls.js', 'dist', 'hls.min.js'),
  '/lib/dash.all.min.js': join(REPO_ROOT, 'node_modules', 'dashjs', 'dist', 'modern', 'umd', 'dash.all.min.js'),
};
