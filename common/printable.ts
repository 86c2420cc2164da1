// Text that came from outside (Consul node names, KV values, Sentinel arguments) shown to a human:
// a terminal, a log viewer or the Consul UI must show it, never obey it. Control characters, line
// and paragraph separators and bidi controls would rewrite what the reader sees (a fake second log
// line, a name that reads backwards), so they are shown as \u escapes instead.

// C0, DEL and C1 controls (NEL, U+0085, is a line break too), the Arabic letter mark, LRM/RLM,
// LINE/PARAGRAPH SEPARATOR, the bidi embeddings/overrides and isolates.
const UNSAFE =
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** What JSON.stringify leaves raw: it already escapes C0 controls and lone surrogates inside strings. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (char: string): string => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** The text with every unsafe character (and lone surrogate) shown as a \u escape. */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * JSON.stringify, with the characters it leaves raw (DEL, C1, separators, bidi) escaped too: the same
 * value once parsed, but safe to print or to show in the Consul UI. JSON text holds such characters
 * only inside strings, where a \u escape means the same character.
 */
export function printableJson(value: unknown, space?: number): string {
  return (JSON.stringify(value, null, space) ?? 'null').replace(UNSAFE_IN_JSON, escape);
}

/** A pino destination: each JSON log line (pino escapes C0 itself) written with the rest escaped too. */
export function printableJsonLines(stream: { write(text: string): unknown }): { write(line: string): void } {
  return {
    write(line: string) {
      stream.write(line.replace(UNSAFE_IN_JSON, escape));
    },
  };
}
