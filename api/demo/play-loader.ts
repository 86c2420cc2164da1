// The play page of the embedded demo (api/demo/play/) runs where `npm start` runs, in the repository:
// it needs the stock players (dev dependencies), the media shipped beside it and the verifying edge
// in doubles/cdn-edge. The built image has none of them, so the page is loaded by a path the build
// does not follow (tsconfig.build.json leaves api/demo/play out), and where it is missing the demo
// keeps its example CDNs and says why.
import type { Express } from 'express';
import type { EmbeddedDemo } from './embedded.ts';

export interface DemoPlay {
  /** The one CDN the demo then plays through: the local verifying edge, as a raw `cdns[]` entry. */
  readonly cdn: Record<string, unknown>;
  /** `http://127.0.0.1:<port>`: the edge the player fetches from. */
  readonly edgeUrl: string;
  /** st-api's app with /demo/ (the page, the players, demo tokens, the edge's log) in front of it. */
  withPage(app: Express): Express;
  close(): Promise<void>;
}

export type DemoPlayOutcome = DemoPlay | { readonly unavailable: string };
export type StartDemoPlay = (demo: EmbeddedDemo) => Promise<DemoPlayOutcome>;

const PLAY_MODULE = './play/start.ts';

export async function startDemoPlay(demo: EmbeddedDemo): Promise<DemoPlayOutcome> {
  let start: StartDemoPlay;
  try {
    ({ startDemoPlay: start } = (await import(PLAY_MODULE)) as { startDemoPlay: StartDemoPlay });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return { unavailable: 'it is not in this build (it runs from the repository: npm ci && npm start)' };
  }
  return start(demo);
}
