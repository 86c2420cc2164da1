// common/printable.ts: what a node name or a KV value can do to a terminal, a log line or the Consul UI.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { printable, printableJson, printableJsonLines } from '../../common/printable.ts';

// Each would change what a reader sees: a fake new line, a cursor move, text that reads backwards.
const HOSTILE = [
  '\n',
  '\r',
  '\u001b[2J',
  '\u0000',
  '\u007f',
  '\u0085',
  '\u061c',
  '\u200e',
  '\u200f',
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202e',
  '\u2066',
  '\u2069',
  '\ud800',
];
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udfff]/;

describe('printable', () => {
  it('when text holds control, separator or bidi characters, then each is shown as a \\u escape and the rest is kept', () => {
    assert.equal(printable('api-node-1\u202e1-edon-ipa'), 'api-node-1\\u202e1-edon-ipa');
    assert.equal(printable('line\nbreak\u2028para'), 'line\\u000abreak\\u2028para');
    for (const char of HOSTILE) assert.doesNotMatch(printable(`a${char}b`), RAW, JSON.stringify(char));
    assert.equal(
      printable('Zürich ünïcode 東京 😀 a-b_c.d'),
      'Zürich ünïcode 東京 😀 a-b_c.d',
      'ordinary text, emoji included, is untouched',
    );
  });

  it('when a value is written as JSON, then the text holds none of them and parses back to the exact value', () => {
    const value = { nodes: HOSTILE.map((char) => `node${char}x`), plain: 'api-node-1' };
    const text = printableJson(value, 2);
    assert.doesNotMatch(text.replace(/\n */g, ''), RAW, 'only the indentation breaks lines');
    assert.deepEqual(JSON.parse(text), value);
    assert.match(text, /^\{\n {2}"nodes"/, 'indentation kept');
  });

  it('when pino logs them through printableJsonLines, then each log line is one line with no raw character', () => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (chunk: Buffer) => (written += chunk.toString()));
    const logger = pino({ base: null }, printableJsonLines(out));
    logger.warn({ node: 'evil\u202e\u2028node', nested: { name: 'a\u0085b' } }, 'excluded\u2029 evil\u202enode');
    const lines = written.split('\n');
    assert.equal(lines.length, 2, 'one line and its terminator');
    assert.doesNotMatch(lines[0] ?? '', RAW);
    const entry = JSON.parse(lines[0] ?? '') as { node: string; nested: { name: string }; msg: string };
    assert.deepEqual([entry.node, entry.nested.name, entry.msg], ['evil\u202e\u2028node', 'a\u0085b', 'excluded\u2029 evil\u202enode']);
  });
});
