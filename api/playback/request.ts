// The play request body: one schema gives both the validator and the type.
import { z } from 'zod';
import { QUALITIES } from './rendition.ts';

/** Content ids are opaque catalog keys; the pattern keeps them out of paths, keys and logs as plain tokens. */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const DEVICE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

export const playbackRequestSchema = z.object({
  contentId: z.string().regex(CONTENT_ID_PATTERN, 'must be 1-64 characters: letters, digits, "_" or "-"'),
  device: z.string().regex(DEVICE_PATTERN, 'must be a device class name such as web, ios, android, tv'),
  quality: z.enum(['auto', ...QUALITIES]).default('auto'),
  protocol: z.enum(['hls', 'dash']).optional(),
});

export type PlaybackRequest = z.infer<typeof playbackRequestSchema>;
