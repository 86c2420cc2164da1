// Sentinel's warning events, where on-call engineers look: one KV value per master with a
// bounded ring of recent events and a `last` summary. All three Sentinels report the same event
// within milliseconds, so duplicates are merged (reportedBy grows) instead of filling the ring.
import { setTimeout as delay } from 'node:timers/promises';
import { errorOfKind } from '../common/cli/errors.ts';
import { printableJson } from '../common/printable.ts';
import type { ConsulClient } from '../common/consul/client.ts';

export interface SentinelEvent {
  time: string;
  type: string;
  description: string;
  reportedBy: string[];
}

export interface EventRing {
  master: string;
  /** Events recorded since the key was created (merged duplicates count once). */
  count: number;
  last: SentinelEvent | null;
  /** Newest first. */
  events: SentinelEvent[];
}

/** Reports of the same event by several Sentinels arrive within this window. */
const SAME_EVENT_WINDOW_MS = 10_000;
const MAX_REPORTERS = 16;

export function emptyRing(master: string): EventRing {
  return { master, count: 0, last: null, events: [] };
}

export function parseRing(text: string | null | undefined, master: string): EventRing {
  if (text === null || text === undefined || text === '') return emptyRing(master);
  try {
    const value = JSON.parse(text) as Partial<EventRing>;
    if (!Array.isArray(value.events)) return emptyRing(master);
    const events = value.events.filter(
      (e): e is SentinelEvent =>
        typeof e?.time === 'string' && typeof e.type === 'string' && typeof e.description === 'string' && Array.isArray(e.reportedBy),
    );
    return { master, count: typeof value.count === 'number' ? value.count : events.length, last: events[0] ?? null, events };
  } catch {
    // A hand-edited or foreign value: start over rather than never record again.
    return emptyRing(master);
  }
}

/** Pure: the ring after one report. */
export function addEvent(
  ring: EventRing,
  event: { time: Date; type: string; description: string; reporter: string },
  keep: number,
): EventRing {
  const same = ring.events.find(
    (e) =>
      e.type === event.type &&
      e.description === event.description &&
      Math.abs(event.time.getTime() - Date.parse(e.time)) <= SAME_EVENT_WINDOW_MS,
  );
  if (same !== undefined) {
    if (same.reportedBy.includes(event.reporter) || same.reportedBy.length >= MAX_REPORTERS) return ring;
    const merged = { ...same, reportedBy: [...same.reportedBy, event.reporter] };
    const events = ring.events.map((e) => (e === same ? merged : e));
    return { ...ring, events, last: events[0] ?? null };
  }
  const added: SentinelEvent = {
    time: event.time.toISOString(),
    type: event.type,
    description: event.description,
    reportedBy: [event.reporter],
  };
  const events = [added, ...ring.events].slice(0, keep);
  return { master: ring.master, count: ring.count + 1, last: added, events };
}

export class RecordConflictError extends errorOfKind('RecordConflictError', 'transient') {}

/** Read-modify-write with check-and-set, so concurrent reporters never lose each other's events. */
export async function recordEvent(
  consul: ConsulClient,
  key: string,
  master: string,
  event: { time: Date; type: string; description: string; reporter: string },
  keep: number,
): Promise<EventRing> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const current = await consul.kvGet(key);
    const next = addEvent(parseRing(current?.Value ?? null, master), event, keep);
    // Descriptions come from Sentinel's argv and are read in the Consul UI: shown, never obeyed.
    if (await consul.kvCas(key, printableJson(next), current?.ModifyIndex ?? 0)) return next;
    await delay(10 + Math.random() * 40 * (attempt + 1));
  }
  throw new RecordConflictError(`${key}: still contended after 8 check-and-set attempts`);
}
