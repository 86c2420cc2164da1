// A catalog as plain rows: what the embedded default serves from memory, and what tests and the
// benchmark seed into MySQL. The same shape as the tables in migrations/.
import type { DeviceClass, Protocol, Rendition, RightKind } from './types.ts';

export interface Dataset {
  contents: { id: string; title: string; renditions: Rendition[] }[];
  deviceClasses: DeviceClass[];
  purchases: { userId: string; contentId: string; kind: Exclude<RightKind, 'subscription'>; maxHeight: number; expiresAt: number | null }[];
  plans: { id: string; name: string; maxHeight: number; devices: string[] | null; contentIds: string[] }[];
  subscriptions: { userId: string; planId: string; expiresAt: number | null }[];
}

/** The usual ladder of manifests for one title: one manifest per protocol and top rung. */
export function ladder(contentId: string, protocols: readonly Protocol[], heights: readonly number[]): Rendition[] {
  return protocols.flatMap((protocol) =>
    heights.map((height) => ({
      protocol,
      height,
      path: `vod/${contentId}/${protocol}/${height}p/${protocol === 'hls' ? 'master.m3u8' : 'manifest.mpd'}`,
    })),
  );
}

export const STANDARD_DEVICE_CLASSES: DeviceClass[] = [
  { name: 'web', maxHeight: 1080, protocols: ['hls', 'dash'], defaultProtocol: 'dash', enabled: true },
  { name: 'ios', maxHeight: 2160, protocols: ['hls'], defaultProtocol: 'hls', enabled: true },
  { name: 'android', maxHeight: 1080, protocols: ['dash', 'hls'], defaultProtocol: 'dash', enabled: true },
  { name: 'tv', maxHeight: 2160, protocols: ['dash', 'hls'], defaultProtocol: 'dash', enabled: true },
];

const DAY_MS = 24 * 3600 * 1000;

/** The demo catalog: a few titles and viewers that show every kind of right and denial. */
export function demoDataset(nowMs: number): Dataset {
  return {
    contents: [
      { id: 'tt-demo-0001', title: 'Big Buck Bunny', renditions: ladder('tt-demo-0001', ['hls', 'dash'], [2160, 1080, 720, 480]) },
      { id: 'tt-demo-0002', title: 'Sintel', renditions: ladder('tt-demo-0002', ['hls', 'dash'], [1080, 720, 480]) },
      { id: 'tt-demo-0003', title: 'Tears of Steel', renditions: ladder('tt-demo-0003', ['hls'], [720, 480]) },
      { id: 'tt-demo-0004', title: 'Elephants Dream', renditions: ladder('tt-demo-0004', ['dash'], [1080, 480]) },
    ],
    deviceClasses: [
      ...STANDARD_DEVICE_CLASSES,
      { name: 'legacy-stb', maxHeight: 720, protocols: ['hls'], defaultProtocol: 'hls', enabled: false },
    ],
    purchases: [
      { userId: 'demo-user', contentId: 'tt-demo-0001', kind: 'own', maxHeight: 2160, expiresAt: null },
      { userId: 'demo-user', contentId: 'tt-demo-0002', kind: 'rent', maxHeight: 1080, expiresAt: nowMs + 2 * DAY_MS },
      { userId: 'demo-user', contentId: 'tt-demo-0004', kind: 'rent', maxHeight: 1080, expiresAt: nowMs - DAY_MS },
      { userId: 'sd-buyer', contentId: 'tt-demo-0001', kind: 'own', maxHeight: 480, expiresAt: null },
    ],
    plans: [
      {
        id: 'premium',
        name: 'Premium (UHD, every device)',
        maxHeight: 2160,
        devices: null,
        contentIds: ['tt-demo-0001', 'tt-demo-0002', 'tt-demo-0003'],
      },
      {
        id: 'mobile',
        name: 'Mobile (SD, phones only)',
        maxHeight: 480,
        devices: ['ios', 'android'],
        contentIds: ['tt-demo-0002', 'tt-demo-0003'],
      },
    ],
    subscriptions: [
      { userId: 'premium-user', planId: 'premium', expiresAt: nowMs + 30 * DAY_MS },
      { userId: 'mobile-user', planId: 'mobile', expiresAt: nowMs + 30 * DAY_MS },
      { userId: 'lapsed-user', planId: 'premium', expiresAt: nowMs - DAY_MS },
    ],
  };
}
