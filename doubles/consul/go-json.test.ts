// The watch handler's stdin must be byte-for-byte what the agent writes, so the
// Go re-encoding is checked against the shared fixture and Go's escaping rules.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { formatGoDuration, goEncode, goMarshal, GoMap, parseGoDuration, toGoServiceEntries } from './go-json.ts';

const fixturePath = new URL('../../test/fixtures/consul/health-service-st-api.json', import.meta.url);

describe('Go json.Encoder re-encoding', () => {
  it('when the fixture is decoded and re-encoded, then the same document comes back, compact with a trailing newline', () => {
    const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as unknown;
    const text = goEncode(toGoServiceEntries(fixture));
    assert.ok(text.endsWith(']\n'));
    assert.equal(text.split('\n').length, 2, 'one line plus the trailing newline');
    assert.deepEqual(JSON.parse(text), fixture);
  });

  it('when a raw body has lowercase service tagged addresses and sparse definitions, then Go field names and zero values appear', () => {
    const raw = [
      {
        Node: {
          ID: 'n',
          Node: 'a',
          Address: '10.0.0.1',
          Datacenter: 'dc1',
          TaggedAddresses: { lan: '10.0.0.1' },
          Meta: { z: '1', a: '2' },
          CreateIndex: 1,
          ModifyIndex: 1,
        },
        Service: {
          ID: 's',
          Service: 's',
          Tags: [],
          Meta: {},
          Port: 1,
          Address: '',
          TaggedAddresses: { lan: { address: '10.0.0.1', port: 1 } },
          Weights: { Passing: 1, Warning: 1 },
          EnableTagOverride: false,
          CreateIndex: 2,
          ModifyIndex: 2,
          Proxy: {},
          Connect: {},
        },
        Checks: [
          {
            Node: 'a',
            CheckID: 'c',
            Name: 'c',
            Status: 'passing',
            Notes: '',
            Output: '<b>&</b>',
            ServiceID: 's',
            ServiceName: 's',
            ServiceTags: [],
            Type: 'http',
            Interval: '10s',
            ExposedPort: 0,
            Definition: { HTTP: 'http://x', Interval: '10m', Timeout: '1500ms' },
            CreateIndex: 3,
            ModifyIndex: 3,
          },
        ],
      },
    ];
    const text = goEncode(toGoServiceEntries(raw));
    assert.match(text, /"TaggedAddresses":\{"lan":\{"Address":"10\.0\.0\.1","Port":1\}\}/);
    assert.match(text, /"Meta":\{"a":"2","z":"1"\}/, 'map keys sorted');
    assert.match(
      text,
      /"Definition":\{"Interval":"10m0s","Timeout":"1.5s","DeregisterCriticalServiceAfter":"0s","HTTP":"http:\/\/x","Header":null,/,
    );
    assert.match(text, /"Output":"\\u003cb\\u003e\\u0026\\u003c\/b\\u003e"/, 'HTML-safe escaping');
    assert.ok(!text.includes('"Interval":"10s","ExposedPort"'), 'the servers-only Interval field is dropped');
  });

  it('when strings hold control characters and line separators, then they are escaped as Go does', () => {
    assert.equal(goMarshal('a"\\\n\r\t\b\f\u0001\u2028\u2029é'), '"a\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u2028\\u2029é"');
    assert.equal(goMarshal('\ud800x'), '"\ufffdx"');
    assert.equal(
      goMarshal(
        new GoMap([
          ['10', 1],
          ['9', 2],
        ]),
      ),
      '{"10":1,"9":2}',
    );
  });

  it('when durations are formatted, then they match time.Duration.String()', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [500, '500ms'],
      [1500, '1.5s'],
      [10_000, '10s'],
      [600_000, '10m0s'],
      [90_000, '1m30s'],
      [3_600_000, '1h0m0s'],
      [0.001, '1µs'],
    ];
    for (const [ms, text] of cases) assert.equal(formatGoDuration(ms), text);
    assert.equal(parseGoDuration('1h2m3.5s'), 3_723_500);
    assert.equal(parseGoDuration('bogus'), null);
  });
});
