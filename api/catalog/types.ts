// Plain data shared by the stores, the cache and the decisions.
// Times are epoch milliseconds so that values survive a JSON round trip through Redis unchanged.

export type Protocol = 'hls' | 'dash';

export interface Rendition {
  protocol: Protocol;
  /** Vertical resolution of the top rung of this manifest's ladder, e.g. 1080. */
  height: number;
  /** Manifest path below the CDN origin, e.g. `vod/tt0001/hls/1080p/master.m3u8`; the token covers its directory. */
  path: string;
}

export interface Content {
  id: string;
  title: string;
  renditions: Rendition[];
}

export type RightKind = 'own' | 'rent' | 'subscription';

/** One reason a user may play one content: a purchase, a rental or a subscription plan that includes it. */
export interface Right {
  kind: RightKind;
  /** Quality ceiling of what was bought (HD and SD are sold separately). */
  maxHeight: number;
  /** Epoch ms; null = never expires (sell-through). */
  expiresAt: number | null;
  /** Device classes the right is limited to (e.g. a mobile-only plan); null = every device. */
  devices: string[] | null;
}

export interface DeviceClass {
  name: string;
  maxHeight: number;
  protocols: Protocol[];
  defaultProtocol: Protocol;
  /** A device class can be switched off (e.g. an app version withdrawn) without deleting its data. */
  enabled: boolean;
}

/** What one play needs to know about a content and a viewer. */
export interface PlayData {
  content: Content | undefined;
  /** The viewer's rights to this content: purchases, rentals, and plans that include it. */
  rights: Right[];
}

/** The read-only view of the system of record that a play decision needs. */
export interface CatalogStore {
  /** Content and the viewer's rights together: one round trip to the database on a miss. */
  playData(userId: string, contentId: string): Promise<PlayData>;
  deviceClass(name: string): Promise<DeviceClass | undefined>;
}

/** The system of record cannot answer right now (down, stalled, its pool full): a retry shortly may succeed. */
export class CatalogUnavailableError extends Error {
  override name = 'CatalogUnavailableError';
}
