// What the alert rules need from a node's /metrics beyond its request counters (issue #13): each CDN's
// active signing-key expiry and the warning window /health/deep uses, as numbers Prometheus can
// compare with time(); and the last /health/deep verdict, overall and per probe, set each time the
// Consul check runs it, so "deep health warning or critical" is an alert and not only text.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { parseExposition } from '../../common/textfile-metrics.ts';
import { fetchDeepHealth } from '../../testkit/health.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

const DAY_MS = 24 * 3600 * 1000;

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

async function samples(baseUrl: string) {
  return parseExposition(await (await fetch(`${baseUrl}/metrics`)).text());
}

function cdnsWithExpiry(cdnName: string, notAfter: Date): unknown[] {
  const cdns = embeddedDemo().rawConfig['cdns'] as { name: string; signer: { keys: Record<string, unknown>[] } }[];
  return cdns.map((cdn) =>
    cdn.name !== cdnName
      ? cdn
      : {
          ...cdn,
          signer: {
            ...cdn.signer,
            keys: cdn.signer.keys.map((key) => (key['active'] === true ? { ...key, notAfter: notAfter.toISOString() } : key)),
          },
        },
  );
}

describe('when a node exports what the alerts compare', () => {
  it('when a CDN key has notAfter, then its expiry is a gauge by cdn and key id, beside the warning window; keys without one have no series', async () => {
    const notAfter = new Date(Math.floor((Date.now() + 3 * DAY_MS) / 1000) * 1000);
    node = await startTestNode({
      overrides: { cdns: cdnsWithExpiry('cloudfront', notAfter), health: { probeTimeoutMs: 300, keyExpiryWarningDays: 10 } },
    });
    const got = await samples(node.baseUrl);
    const expiries = got.filter((s) => s.name === 'st_api_signing_key_expiry_timestamp_seconds');
    assert.deepEqual(
      expiries.map((s) => [s.labels, s.value]),
      [[{ cdn: 'cloudfront', key: 'KDEMOKEY1' }, notAfter.getTime() / 1000]],
    );
    assert.equal(got.find((s) => s.name === 'st_api_signing_key_expiry_warning_seconds')?.value, 10 * 24 * 3600);
    // The alert's condition holds exactly when /health/deep warns keys=expiring.
    const health = await fetchDeepHealth(node.baseUrl);
    assert.match(health.body, / keys=expiring\(KDEMOKEY1\) /);
  });

  it('when /health/deep has not run, then no health status yet; once it runs, the verdict and each probe are gauges (0 ok, 1 warn, 2 fail)', async () => {
    node = await startTestNode({
      overrides: {
        cdns: cdnsWithExpiry('cloudfront', new Date(Date.now() + DAY_MS)),
        health: { probeTimeoutMs: 300, keyExpiryWarningDays: 14 },
      },
    });
    assert.equal(
      (await samples(node.baseUrl)).find((s) => s.name === 'st_api_health_status'),
      undefined,
    );
    const before = Date.now() / 1000;
    const health = await fetchDeepHealth(node.baseUrl);
    assert.equal(health.status, 429, health.body);
    const got = await samples(node.baseUrl);
    assert.equal(got.find((s) => s.name === 'st_api_health_status')?.value, 1);
    const probe = (name: string) => got.find((s) => s.name === 'st_api_health_probe_status' && s.labels['probe'] === name)?.value;
    assert.equal(probe('keys'), 1);
    assert.equal(probe('mysql'), 0);
    assert.equal(probe('node'), 0);
    assert.ok((got.find((s) => s.name === 'st_api_health_last_check_timestamp_seconds')?.value ?? 0) >= Math.floor(before));

    node.service.startDraining();
    assert.equal((await fetchDeepHealth(node.baseUrl)).status, 503);
    const drained = await samples(node.baseUrl);
    assert.equal(drained.find((s) => s.name === 'st_api_health_status')?.value, 2);
    assert.equal(drained.find((s) => s.name === 'st_api_health_probe_status' && s.labels['probe'] === 'node')?.value, 2);
  });
});
