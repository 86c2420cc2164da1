// Makes the demo media committed in ./media (run once, by hand, where ffmpeg exists):
//   npx tsx api/demo/play/make-media.ts
// The player tests' recipe (test/player/media.ts: H.264 fMP4, 1-second segments shared by HLS and DASH,
// the origin storage layout), with two small rungs so that the files stay well under 1 MB and a
// laptop without ffmpeg plays too. Every ceiling directory of the demo title's catalog ladder gets a
// master playlist and an MPD listing those rungs, as a packager writes them.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMedia } from '../../../test/player/media.ts';
import { demoDataset } from '../../catalog/dataset.ts';
import { DEMO_TITLE, DEMO_MEDIA_DIR } from './media-origin.ts';

const RUNGS = [360, 240];
const SECONDS = 10;

const title = demoDataset(Date.now()).contents.find((content) => content.id === DEMO_TITLE);
if (title === undefined) throw new Error(`make-media: ${DEMO_TITLE} is not in the demo catalog`);

if (title.renditions.some((rendition) => rendition.height < Math.max(...RUNGS)))
  throw new Error(`make-media: a ceiling of ${DEMO_TITLE} is below the rungs made; list only the rungs under it there`);

const work = await mkdtemp(join(tmpdir(), 'st-demo-media-'));
try {
  // A throwaway cache: the player tests' cache in node_modules/.cache is left as it was.
  await generateMedia(join(work, 'media'), [{ id: DEMO_TITLE, rungs: RUNGS }], { seconds: SECONDS, cacheDir: join(work, 'cache') });
  const made = join(work, 'media', DEMO_TITLE);
  const out = join(work, 'out');
  for (const height of RUNGS) await cp(join(made, `${height}p`), join(out, `${height}p`), { recursive: true });
  // Every rung made is below every catalog ceiling, so each ceiling's manifest lists them all.
  const top = `${Math.max(...RUNGS)}p`;
  for (const { protocol, height } of title.renditions) {
    const file = protocol === 'hls' ? 'master.m3u8' : 'manifest.mpd';
    await cp(join(made, protocol, top, file), join(out, protocol, `${height}p`, file));
  }
  await rm(join(DEMO_MEDIA_DIR, DEMO_TITLE), { recursive: true, force: true });
  await cp(out, join(DEMO_MEDIA_DIR, DEMO_TITLE), { recursive: true });
  process.stdout.write(`made ${join(DEMO_MEDIA_DIR, DEMO_TITLE)}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
