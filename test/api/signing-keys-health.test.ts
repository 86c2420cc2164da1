// /health/deep's keys= probe as Consul sees it (issue #10 item 15): an active signing key about to
// expire warns, one CDN's expired key warns, and no usable key at all is critical — with the key
// ids named, so on-call knows which key to rotate.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

const DAY_MS = 24 * 3600 * 1000;
const WARNING_DAYS = 14;

interface CdnEntry {
  name: string;
  signer: { keys: Record<string, unknown>[] };
}

/** The demo's CDNs, with `notAfter` set on the active key of the CDNs named in `expiries`. */
function cdnsWithExpiries(expiries: Record<string, Date>): CdnEntry[] {
  const cdns = embeddedDemo().rawConfig['cdns'] as CdnEntry[];
  return cdns.map((cdn) => {
    const notAfter = expiries[cdn.name];
    if (notAfter === undefined) return cdn;
    return {
      ...cdn,
      signer: {
        ...cdn.signer,
        keys: cdn.signer.keys.map((key) => (key['active'] === true ? { ...key, notAfter: notAfter.toISOString() } : key)),
      },
    };
  });
}

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

async function healthWith(expiries: Record<string, Date>) {
  node = await startTestNode({
    overrides: { cdns: cdnsWithExpiries(expiries), health: { probeTimeoutMs: 300, keyExpiryWarningDays: WARNING_DAYS } },
  });
  return fetchDeepHealth(node.baseUrl);
}

describe('when the active signing keys expire', () => {
  it('when every active key is valid beyond the warning window, then keys=ok and the node passes', async () => {
    const health = await healthWith({ cloudfront: new Date(Date.now() + (WARNING_DAYS + 30) * DAY_MS) });
    assert.equal(statusApartFromLag(health), 200, health.body);
    assert.match(health.body, / keys=ok\(4\) /);
  });

  it('when a CDN key expires within keyExpiryWarningDays, then 429 warning naming the key (plays still work)', async () => {
    const health = await healthWith({ cloudfront: new Date(Date.now() + 3 * DAY_MS) });
    assert.equal(health.status, 429, health.body);
    assert.match(health.body, /^warn .* keys=expiring\(KDEMOKEY1\) /);
    assert.equal((await node?.play({ contentId: 'tt-demo-0001', device: 'web' }))?.status, 200);
  });

  it("when one CDN's key has expired and the others are valid, then 429 warning naming the expired key", async () => {
    const health = await healthWith({ cloudfront: new Date(Date.now() - DAY_MS) });
    assert.equal(health.status, 429, health.body);
    assert.match(health.body, /^warn .* keys=expired\(KDEMOKEY1\) /);
  });

  it('when every CDN key has expired, then 503 critical keys=none-usable: Consul takes the node out', async () => {
    const past = new Date(Date.now() - DAY_MS);
    const health = await healthWith({ cloudfront: past, akamai: past, 'origin-nginx': past, wowza: past });
    assert.equal(health.status, 503, health.body);
    assert.match(health.body, /^fail .* keys=none-usable /);
  });
});
