// What a client developer and on-call meet at the HTTP surface: the scheme of the Authorization
// header in any case, the access log (one line per request, with a request id, never a credential),
// and the OpenAPI document served by the node itself. The real app in-process on the embedded demo.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { createLogger } from '../../api/logger.ts';
import { createService, type Service } from '../../api/service.ts';
import { waitFor } from '../../testkit/processes.ts';

type LogLine = Record<string, unknown> & { level: number; msg: string };

const demo = embeddedDemo();
const lines: LogLine[] = [];
let rawLog = '';
let service: Service;
let server: Server;
let baseUrl: string;

before(async () => {
  // Pinned to the first CDN (CloudFront, cookie delivery): its answer carries signed cookies that must never be logged.
  const config = parseConfig({ ...demo.rawConfig, listen: { host: '127.0.0.1', port: 0 }, logLevel: 'debug' }, {});
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      rawLog += chunk.toString();
      for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  service = createService(config, createLogger({ level: 'debug', program: 'st-api-test', destination: sink }), { random: () => 0 });
  server = service.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  server.close();
  await service.close();
});

const PLAY_BODY = { contentId: 'tt-demo-0001', device: 'web' };

function play(authorization: string | undefined, headers: Record<string, string> = {}, body: unknown = PLAY_BODY): Promise<Response> {
  return fetch(`${baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }), ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

/** The access-log line of one request, found by its id (the line is written when the answer is done). */
function accessLine(reqId: string): Promise<LogLine> {
  return waitFor(() => lines.find((line) => line.msg === 'request' && line.reqId === reqId), {
    timeoutMs: 5000,
    intervalMs: 10,
    what: `the access-log line of ${reqId}`,
  });
}

const INFO = 30;
const DEBUG = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('when a client writes the Authorization scheme in another case', () => {
  for (const scheme of ['bearer', 'BEARER', 'Bearer ']) {
    it(`then "${scheme} <token>" plays like "Bearer <token>"`, async () => {
      const response = await play(`${scheme} ${demo.tokenFor('demo-user', 600)}`);
      assert.equal(response.status, 200, await response.clone().text());
    });
  }
});

describe('when a request is answered', () => {
  it('then one info line says who played what: request id (the caller’s, echoed), method, route, status, latency, viewer and content', async () => {
    const response = await play(`Bearer ${demo.tokenFor('demo-user', 600)}`, { 'x-request-id': 'app-7f3a/retry-1' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-request-id'), 'app-7f3a/retry-1');
    const line = await accessLine('app-7f3a/retry-1');
    assert.equal(line.level, INFO);
    assert.equal(line.method, 'POST');
    assert.equal(line.route, '/v1/playback-urls');
    assert.equal(line.status, 200);
    assert.equal(line.userId, 'demo-user');
    assert.equal(line.contentId, 'tt-demo-0001');
    assert.equal(typeof line.ms, 'number');
    assert.ok((line.ms as number) >= 0);
    assert.equal(line.code, undefined);
  });

  it('then a denial is logged at info with the viewer, the content and the problem code', async () => {
    const response = await play(`Bearer ${demo.tokenFor('nobody', 600)}`);
    assert.equal(response.status, 403);
    const line = await accessLine(response.headers.get('x-request-id') ?? '');
    assert.equal(line.level, INFO);
    assert.deepEqual(
      { status: line.status, code: line.code, userId: line.userId, contentId: line.contentId },
      { status: 403, code: 'NOT_PURCHASED', userId: 'nobody', contentId: 'tt-demo-0001' },
    );
  });

  it('then a refusal before the viewer is known carries its code, and no viewer', async () => {
    const response = await play(undefined);
    assert.equal(response.status, 401);
    const line = await accessLine(response.headers.get('x-request-id') ?? '');
    assert.equal(line.code, 'TOKEN_MISSING');
    assert.equal(line.userId, undefined);
  });

  it('then a content id that is not one (arbitrary body text) is not logged', async () => {
    const response = await play(`Bearer ${demo.tokenFor('demo-user', 600)}`, {}, { contentId: 'x y\n{"level":60}', device: 'web' });
    assert.equal(response.status, 422);
    const line = await accessLine(response.headers.get('x-request-id') ?? '');
    assert.equal(line.contentId, undefined);
    assert.equal(line.code, 'INVALID_REQUEST');
  });

  it('then without an X-Request-Id, or with one that is too long or not printable, a new id is made and echoed', async () => {
    for (const given of [undefined, 'x'.repeat(129), 'has space', 'tab\there', 'é-accent']) {
      const response = await fetch(`${baseUrl}/v1/nothing-here`, { headers: given === undefined ? {} : { 'x-request-id': given } });
      const echoed = response.headers.get('x-request-id') ?? '';
      assert.match(echoed, UUID, `given ${JSON.stringify(given)}`);
      const line = await accessLine(echoed);
      assert.equal(line.route, 'unmatched');
      assert.equal(line.code, 'NOT_FOUND');
    }
  });

  it('then health checks and metrics scrapes are logged at debug only, so Consul’s 5 s checks do not flood the log', async () => {
    for (const path of ['/health/live', '/health/deep', '/metrics']) {
      const response = await fetch(`${baseUrl}${path}`);
      await response.text();
      const line = await accessLine(response.headers.get('x-request-id') ?? '');
      assert.equal(line.level, DEBUG, path);
      assert.equal(line.route, path);
    }
  });

  it('then no line carries the token, the Authorization header, a cookie, or the signed URL', async () => {
    const token = demo.tokenFor('demo-user', 600);
    const response = await play(`Bearer ${token}`, { cookie: 'session=s3cr3t-cookie-value' });
    const answer = (await response.json()) as { url: string; cookies?: { value: string }[] };
    await accessLine(response.headers.get('x-request-id') ?? '');
    assert.ok((answer.cookies ?? []).length > 0, 'the pinned CDN answers with signed cookies');
    for (const secret of [
      token,
      token.split('.')[2] ?? token,
      's3cr3t-cookie-value',
      answer.url,
      ...(answer.cookies ?? []).map((c) => c.value),
    ]) {
      assert.ok(!rawLog.includes(secret), `the log holds ${secret.slice(0, 24)}…`);
    }
    assert.doesNotMatch(rawLog, /authorization|"cookie"/i);
  });
});

/** GET with a chosen Host header (fetch does not let a caller set Host). */
function getWithHost(path: string, host: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const { port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('when a client asks the node for its OpenAPI document', () => {
  it('then the servers entry is the base URL the request used, so a generated client calls the name it reached', async () => {
    const answer = await getWithHost('/openapi.json', 'play.example.com:8080');
    assert.equal(answer.status, 200);
    const doc = JSON.parse(answer.body) as { servers: { url: string }[]; paths: Record<string, unknown> };
    assert.equal(doc.servers[0]?.url, 'http://play.example.com:8080');
    assert.ok('/v1/playback-urls' in doc.paths && '/openapi.json' in doc.paths);
    assert.equal(answer.headers['cache-control'], 'public, max-age=300');
    assert.equal(answer.headers['vary'], 'Host');
    assert.equal(answer.headers['access-control-allow-origin'], '*');
  });

  it('then a Host header that is not a plain host[:port] never reaches the document: the server is "/"', async () => {
    for (const host of ['evil.example.com/"><script>', 'a b', 'x'.repeat(300)]) {
      const answer = await getWithHost('/openapi.json', host);
      assert.equal(answer.status, 200, host);
      assert.deepEqual((JSON.parse(answer.body) as { servers: { url: string }[] }).servers[0]?.url, '/');
    }
  });

  it('then the document names a different ETag for a different Host, and the same for the same', async () => {
    const [a, b, c] = await Promise.all([
      getWithHost('/openapi.json', 'a.example.com'),
      getWithHost('/openapi.json', 'b.example.com'),
      getWithHost('/openapi.json', 'a.example.com'),
    ]);
    assert.notEqual(a.headers['etag'], b.headers['etag']);
    assert.equal(a.headers['etag'], c.headers['etag']);
  });
});
