// deploy/iam/watcher-route53-policy.json grants exactly what the watcher does. The real watcher runs
// against the Route53 double through a recording proxy, so every call is judged as IAM would see it
// on the wire (operation, zone, and each change's action, name and type), not as the code intends.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Route53Provider } from '../../watcher/provider/route53.ts';
import { child, children, parseXml } from '../../doubles/route53/xml.ts';
import { waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { registerApiNode, REPO, startWatcherWorld, watcherCli, type WatcherWorld } from '../watcher/harness.ts';
import { changeRequest, evaluate, normalizeRecordName, type Policy, type RequestContext } from './iam-evaluator.ts';

const POLICY_FILE = join(REPO, 'deploy', 'iam', 'watcher-route53-policy.json');
const RECORD_NAME = 'play.example.com';

function renderPolicy(zoneId: string, recordName: string): Policy {
  // As deploy/iam/README.md renders it: the bare zone id, the normalised name (JSON-escaped).
  const text = readFileSync(POLICY_FILE, 'utf8')
    .replaceAll('${ZONE_ID}', zoneId.replace(/^\/hostedzone\//, ''))
    .replaceAll('${RECORD_NAME}', JSON.stringify(normalizeRecordName(recordName)).slice(1, -1));
  assert.doesNotMatch(text, /\$\{/, 'every placeholder is rendered');
  return JSON.parse(text) as Policy;
}

interface RecordedCall {
  method: string;
  path: string;
  body: string;
  response: string;
}

/** A transparent HTTP proxy in front of the double that keeps every request and answer. */
async function startRecorder(target: string): Promise<{ endpoint: string; calls: RecordedCall[]; server: Server }> {
  const calls: RecordedCall[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const response = Buffer.concat(parts);
            calls.push({ method: req.method ?? '', path: req.url ?? '', body: body.toString('utf8'), response: response.toString('utf8') });
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(response);
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502);
        res.end(String(error));
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, server };
}

/** The request context of a Route53 call that only reads `resource` (no condition keys, no changes). */
function read(operation: string, resource: string): RequestContext & { operation: string; changes: [] } {
  return { operation, changes: [], action: `route53:${operation}`, resource, keys: {} };
}

/** Route53's REST-XML routes (API 2013-04-01) → the IAM request context of that call. */
function toRequestContext(
  call: RecordedCall,
): RequestContext & { operation: string; changes: { action: string; name: string; type: string }[] } {
  const path = new URL(call.path, 'http://x').pathname.replace(/\/$/, '');
  const rrset = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset$/.exec(path);
  if (rrset !== null && call.method === 'POST') {
    const batch = child(parseXml(call.body), 'ChangeBatch');
    const list = batch === undefined ? undefined : child(batch, 'Changes');
    const changes = (list === undefined ? [] : children(list, 'Change')).map((change) => {
      const set = child(change, 'ResourceRecordSet');
      return {
        action: child(change, 'Action')?.text ?? '',
        name: (set && child(set, 'Name')?.text) ?? '',
        type: (set && child(set, 'Type')?.text) ?? '',
      };
    });
    return { operation: 'ChangeResourceRecordSets', changes, ...changeRequest(rrset[1] ?? '', changes) };
  }
  if (rrset !== null && call.method === 'GET') {
    return read('ListResourceRecordSets', `arn:aws:route53:::hostedzone/${rrset[1] ?? ''}`);
  }
  const change = /^\/2013-04-01\/change\/([^/]+)$/.exec(path);
  if (change !== null && call.method === 'GET') {
    return read('GetChange', `arn:aws:route53:::change/${change[1] ?? ''}`);
  }
  throw new Error(`the watcher made a call the test does not know: ${call.method} ${call.path}`);
}

let world: WatcherWorld;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
const nodes: TestNode[] = [];

async function consulPassing(count: number): Promise<void> {
  await waitFor(
    async () => {
      const response = await fetch(`${world.consul.httpAddr}/v1/health/service/st-api?passing=1`);
      return ((await response.json()) as unknown[]).length === count || undefined;
    },
    { timeoutMs: 15_000, intervalMs: 100, what: `${count} st-api instance(s) passing in Consul` },
  );
}

async function cli(argv: string[]): Promise<void> {
  const result = await watcherCli(world, argv, { env: { AWS_ENDPOINT_URL_ROUTE_53: recorder.endpoint, ST_DNS_LOG_LEVEL: 'warn' } });
  assert.equal(result.code, 0, `watcher ${argv.join(' ')}: ${result.stderr}`);
}

before(async () => {
  world = await startWatcherWorld({ minHealthy: 1 }, { rateLimit: false, insyncDelayMs: 50 });
  recorder = await startRecorder(world.route53.endpoint);
  for (let i = 1; i <= 3; i += 1) nodes.push(await startTestNode());
  await registerApiNode(world, 'api-node-1', '127.0.1.1', nodes[0] as TestNode);
  await registerApiNode(world, 'api-node-2', '127.0.1.2', nodes[1] as TestNode);
  // node-3 also has an IPv6 address, so the watcher manages an AAAA record too.
  const node3 = await world.consul.addNode('api-node-3', '127.0.1.3');
  const registered = await fetch(`${node3.agentAddr}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      Name: 'st-api',
      ID: 'st-api',
      Address: '127.0.1.3',
      TaggedAddresses: { lan_ipv6: { Address: '2001:db8::3', Port: 8080 } },
      Port: Number(new URL((nodes[2] as TestNode).baseUrl).port),
      Check: {
        CheckID: 'st-api:deep-health',
        Name: 'st-api deep health',
        HTTP: `${(nodes[2] as TestNode).baseUrl}/health/deep`,
        Interval: '200ms',
        Timeout: '1s',
      },
    }),
  });
  assert.equal(registered.status, 200, await registered.text());
  await consulPassing(3);

  await cli(['reconcile']); // CREATE A ×3 and AAAA ×1
  await registerApiNode(world, 'api-node-2', '127.0.1.22', nodes[1] as TestNode);
  await consulPassing(3);
  await cli(['reconcile']); // UPSERT node-2's A record
  await cli(['exclude', 'api-node-3', '--reason', 'iam test', '--by', 'ci']); // DELETE node-3's A and AAAA
  await cli(['status']);
  await cli(['plan']);
  // The provider's INSYNC poll, through the same proxy and credentials.
  const changeId = /<Id>([^<]+)<\/Id>/.exec(recorder.calls.find((call) => call.method === 'POST')?.response ?? '')?.[1];
  assert.ok(changeId !== undefined, 'a change id came back');
  const provider = new Route53Provider({ zoneId: world.zoneId, recordName: RECORD_NAME, ownerId: 'st-api', maxAttempts: 2 });
  assert.equal(await provider.waitInSync(changeId, 5000), true);
});

after(async () => {
  await new Promise((resolve) => recorder.server.close(resolve));
  await world.stop();
  await Promise.all(nodes.map((node) => node.close()));
});

describe('deploy/iam/watcher-route53-policy.json', () => {
  it('when read, then it is JSON with Version 2012-10-17, Allow statements only, and the two documented placeholders', () => {
    const text = readFileSync(POLICY_FILE, 'utf8');
    const policy = JSON.parse(text) as Policy;
    assert.equal(policy.Version, '2012-10-17');
    assert.ok(policy.Statement.length > 0 && policy.Statement.every((statement) => statement.Effect === 'Allow'));
    assert.deepEqual([...new Set(text.match(/\$\{[^}]*\}/g))].sort(), ['${RECORD_NAME}', '${ZONE_ID}']);
    // No wildcard action and no zone wildcard: the grant is one zone, three calls.
    const actions = policy.Statement.flatMap((statement) => [statement.Action ?? []].flat());
    assert.deepEqual(actions.sort(), ['route53:ChangeResourceRecordSets', 'route53:GetChange', 'route53:ListResourceRecordSets']);
    assert.ok(!text.includes('hostedzone/*'));
  });

  it('when the real watcher creates, upserts and deletes its A and AAAA records, then IAM allows every call it sends', () => {
    const policy = renderPolicy(world.zoneId, RECORD_NAME);
    const requests = recorder.calls.map(toRequestContext);
    // The proxy saw exactly what reached the double.
    assert.equal(requests.length, world.route53.calls().length);
    for (const request of requests) {
      assert.equal(evaluate(policy, request), 'Allow', `${request.operation} ${JSON.stringify(request.changes)} on ${request.resource}`);
    }
    // And the run covered everything the policy is for.
    assert.deepEqual([...new Set(requests.map((request) => request.operation))].sort(), [
      'ChangeResourceRecordSets',
      'GetChange',
      'ListResourceRecordSets',
    ]);
    const changes = requests.flatMap((request) => request.changes);
    assert.deepEqual([...new Set(changes.map((change) => change.action))].sort(), ['CREATE', 'DELETE', 'UPSERT']);
    assert.deepEqual([...new Set(changes.map((change) => change.type))].sort(), ['A', 'AAAA']);
    assert.deepEqual([...new Set(changes.map((change) => change.name))], [`${RECORD_NAME}.`]);
  });

  it('when a name differs only by case or a trailing dot, then it is the same normalised name and allowed', () => {
    const policy = renderPolicy('Z0123456789ABC', 'Play.Example.com.');
    assert.equal(
      evaluate(policy, changeRequest('Z0123456789ABC', [{ action: 'UPSERT', name: 'PLAY.example.COM.', type: 'AAAA' }])),
      'Allow',
    );
  });

  describe('calls outside the watcher’s job', () => {
    const zone = 'Z0123456789ABC';
    const ours = { action: 'CREATE', name: 'play.example.com.', type: 'A' };
    const denied: [string, RequestContext][] = [
      ['a change in another hosted zone', changeRequest('ZOTHERZONE0001', [ours])],
      ['a change to another name in the zone', changeRequest(zone, [{ ...ours, name: 'www.example.com.' }])],
      ['a change to a name under ours', changeRequest(zone, [{ ...ours, name: 'evil.play.example.com.' }])],
      ['a wildcard record', changeRequest(zone, [{ ...ours, name: '*.example.com.' }])],
      ['a TXT record under our name', changeRequest(zone, [{ ...ours, type: 'TXT' }])],
      ['a CNAME under our name', changeRequest(zone, [{ ...ours, type: 'CNAME' }])],
      [
        'a batch that smuggles one foreign change beside ours',
        changeRequest(zone, [ours, { action: 'DELETE', name: 'example.com.', type: 'MX' }]),
      ],
      [
        'ListResourceRecordSets in another zone',
        { action: 'route53:ListResourceRecordSets', resource: 'arn:aws:route53:::hostedzone/ZOTHERZONE0001', keys: {} },
      ],
      ['ListHostedZones', { action: 'route53:ListHostedZones', resource: '*', keys: {} }],
      ['DeleteHostedZone on our zone', { action: 'route53:DeleteHostedZone', resource: `arn:aws:route53:::hostedzone/${zone}`, keys: {} }],
      ['CreateHealthCheck', { action: 'route53:CreateHealthCheck', resource: '*', keys: {} }],
    ];
    for (const [what, request] of denied) {
      it(`when the watcher's credentials attempt ${what}, then IAM denies it`, () => {
        assert.equal(evaluate(renderPolicy(zone, RECORD_NAME), request), 'ImplicitDeny');
      });
    }
  });
});
