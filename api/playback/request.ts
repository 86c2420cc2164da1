// The play request body: one schema gives both the validator and the type.
import { z } from 'zod';
import { QUALITIES } from './rendition.ts';

/** Content ids are opaque catalog keys; the pattern keeps them out of paths, keys and logs as plain tokens. */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const DEVICE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

const QUALITY_VALUES = ['auto', ...QUALITIES] as const;
const PROTOCOL_VALUES = ['hls', 'dash'] as const;

/** Messages a client developer can show as they are: the field's name, then what it takes. */
const required = (field: string, what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `${field} is required` : `${field} must be ${what}`;

export const playbackRequestSchema = z.object(
  {
    contentId: z
      .string({ error: required('contentId', 'a string') })
      .regex(CONTENT_ID_PATTERN, 'contentId must be 1-64 characters: letters, digits, "_" or "-", starting with a letter or digit'),
    device: z
      .string({ error: required('device', 'a string') })
      .regex(DEVICE_PATTERN, 'device must be a device class name such as web, ios, android, tv'),
    quality: z.enum(QUALITY_VALUES, { error: () => `quality must be one of ${QUALITY_VALUES.join(', ')}` }).default('auto'),
    protocol: z.enum(PROTOCOL_VALUES, { error: () => `protocol must be one of ${PROTOCOL_VALUES.join(', ')}` }).optional(),
  },
  { error: () => 'the body must be a JSON object' },
);

export type PlaybackRequest = z.infer<typeof playbackRequestSchema>;
