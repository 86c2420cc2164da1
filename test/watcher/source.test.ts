import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { healthServiceEntries, parseHealthService, SourceInputError, toInstances } from '../../watcher/source/consul-health.ts';

// The agent's re-encoding of /v1/health/service/st-api, copied from ../shared/fixtures/consul into test/fixtures/consul (see its README).
const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'consul', 'health-service-st-api.json'), 'utf8');

describe('Consul health source', () => {
  it('when the watch hands over the fixture, then each node gets its address and aggregated health', () => {
    const instances = toInstances(parseHealthService(fixture), 'st-api');
    assert.deepEqual(
      instances.map(({ node, health, ipv4 }) => ({ node, health, ipv4 })),
      [
        { node: 'api-node-1', health: 'passing', ipv4: '10.0.1.11' },
        { node: 'api-node-2', health: 'critical', ipv4: '10.0.1.12' },
        { node: 'api-node-3', health: 'maintenance', ipv4: '10.0.1.13' },
      ],
    );
  });

  it('when a check is not passing, then the instance carries its name, status and output (why, for status); passing ones are left out', () => {
    const instances = toInstances(parseHealthService(fixture), 'st-api');
    assert.deepEqual(instances[0]?.failingChecks, []);
    const [critical] = instances[1]?.failingChecks ?? [];
    assert.equal(critical?.name, 'st-api deep health');
    assert.equal(critical?.status, 'critical');
    assert.match(critical?.output ?? '', /^HTTP GET http:\/\/10\.0\.1\.12:8080\/health\/deep: 503 Service Unavailable/);
    assert.deepEqual(instances[2]?.failingChecks, [{ name: 'Service Maintenance Mode', status: 'critical', output: '' }]);
  });

  it('when a check carries a Name or Output that is not text, then the answer is still used and the field dropped', () => {
    const entries = JSON.parse(fixture) as { Checks: Record<string, unknown>[] }[];
    const check = entries[1]?.Checks[1];
    if (check !== undefined) Object.assign(check, { Name: 7, Output: { odd: true } });
    const [failing] = toInstances(parseHealthService(JSON.stringify(entries)), 'st-api')[1]?.failingChecks ?? [];
    assert.deepEqual(failing, { name: 'st-api-2:deep-health', status: 'critical', output: '' });
  });

  it('when the service address is empty, then the node address is used', () => {
    const entries = JSON.parse(fixture) as { Service: { Address: string } }[];
    entries.forEach((entry) => (entry.Service.Address = ''));
    const instances = toInstances(parseHealthService(JSON.stringify(entries)), 'st-api');
    assert.equal(instances[0]?.ipv4, '10.0.1.11');
  });

  it('when the node has a lan_ipv6 tagged address, then the instance has an IPv6 address too', () => {
    const entries = JSON.parse(fixture) as { Node: { TaggedAddresses: Record<string, string> } }[];
    if (entries[0] !== undefined) entries[0].Node.TaggedAddresses.lan_ipv6 = '2001:db8::11';
    assert.equal(toInstances(parseHealthService(JSON.stringify(entries)), 'st-api')[0]?.ipv6, '2001:db8::11');
  });

  it('when the service has no instances (Go encodes a nil slice as null), then there are none', () => {
    assert.deepEqual(parseHealthService('null\n'), []);
    assert.deepEqual(parseHealthService('[]\n'), []);
  });

  const garbage: [string, string][] = [
    ['empty stdin', ''],
    ['truncated JSON', fixture.slice(0, fixture.length / 2)],
    ['not JSON', 'Failed to run watch handler\n'],
    ['an object instead of a list', '{"Node":{}}'],
    ['entries without a Service', '[{"Node":{"Node":"n","Address":"10.0.0.1"},"Checks":[]}]'],
    ['a KV watch payload', '[{"Key":"st-api/dns/status","Value":"e30="}]'],
  ];
  for (const [what, text] of garbage) {
    it(`when stdin is ${what}, then it is refused whole with a clear error`, () => {
      assert.throws(() => parseHealthService(text), SourceInputError);
    });
  }

  it('when the HTTP API answers (already parsed, not text), then the same schema checks it, and the same garbage is refused', () => {
    assert.deepEqual(healthServiceEntries(JSON.parse(fixture)), parseHealthService(fixture));
    assert.deepEqual(healthServiceEntries(null), []);
    assert.throws(() => healthServiceEntries({ Node: {} }), SourceInputError);
    assert.throws(() => healthServiceEntries(undefined), SourceInputError);
  });
});
