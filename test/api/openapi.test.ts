// The OpenAPI document (api/openapi.yaml) is a contract: these tests hold it to the code. The document
// itself must be sound and enumerate exactly the PROBLEMS table with the right statuses; real responses
// from the app — a play, a CORS preflight, a tokenized manifest, every problem code, health and
// metrics — must match what it documents, on the operation their URL maps onto; and its request body
// schema must accept and refuse what the zod schema does.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import jwt from 'jsonwebtoken';
import { parse } from 'yaml';
import { z } from 'zod';
import { createApp, type AppDeps } from '../../api/app.ts';
import { createTokenVerifier, tokenKey } from '../../api/auth/client-token.ts';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { MemoryCatalogStore } from '../../api/catalog/memory-store.ts';
import { CatalogUnavailableError, type CatalogStore } from '../../api/catalog/types.ts';
import { GrantCache } from '../../api/delivery/grant-cache.ts';
import { DEMO_AUDIENCE, DEMO_ISSUER } from '../../api/demo/embedded.ts';
import { PROBLEMS, type ProblemCode } from '../../api/errors.ts';
import type { Probe } from '../../api/health/deep-health.ts';
import { createLogger } from '../../api/logger.ts';
import { Metrics } from '../../api/metrics.ts';
import { NO_RATE_LIMIT, type RateLimiter } from '../../api/playback/rate-limit.ts';
import { playbackRequestSchema } from '../../api/playback/request.ts';
import { cdnsFromConfig } from '../../api/service.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

// ---------------------------------------------------------------------------------------------
// The document, and a validator for any schema in it (by JSON pointer, so its $refs resolve).

type Json = Record<string, unknown>;

const doc = parse(readFileSync(new URL('../../api/openapi.yaml', import.meta.url), 'utf8')) as Json;
const DOC_ID = 'urn:st-api:openapi';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PROBLEM_CODES = Object.keys(PROBLEMS) as ProblemCode[];

const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: true });
addFormats.default(ajv);
// The document is registered whole so that pointers into it (and its #/components refs) resolve.
// Its top-level OpenAPI members are not JSON Schema keywords: declare them as inert annotations.
for (const key of Object.keys(doc)) ajv.addKeyword(key);
ajv.addSchema({ ...doc, $id: DOC_ID });

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueAt(pointer: readonly string[]): unknown {
  let value: unknown = doc;
  for (const token of pointer) value = isRecord(value) || Array.isArray(value) ? (value as Json)[token] : undefined;
  return value;
}

function parseRef(ref: string): string[] {
  assert.ok(ref.startsWith('#/'), `only local references are used: ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((token) => decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Walks the document from the root, following Reference Objects on the way (a response or header
 * given as a $ref), but not at the last step: a schema's own $ref is left for Ajv, as it may have siblings.
 */
function locate(path: readonly string[]): { pointer: string[]; value: unknown } {
  let pointer: string[] = [];
  let value: unknown = doc;
  path.forEach((token, index) => {
    pointer = [...pointer, token];
    value = valueAt(pointer);
    const ref = isRecord(value) ? value.$ref : undefined;
    if (index < path.length - 1 && typeof ref === 'string') {
      pointer = parseRef(ref);
      value = valueAt(pointer);
    }
  });
  return { pointer, value };
}

function deref(value: unknown): unknown {
  return isRecord(value) && typeof value.$ref === 'string' ? valueAt(parseRef(value.$ref)) : value;
}

function schemaAt(path: readonly string[]): ValidateFunction {
  const { pointer, value } = locate(path);
  assert.ok(value !== undefined, `the document has a schema at /${path.join('/')}`);
  const fragment = pointer.map((token) => encodeURIComponent(token.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
  const validate = ajv.getSchema(`${DOC_ID}#/${fragment}`);
  assert.ok(validate, `Ajv compiles the schema at /${pointer.join('/')}`);
  return validate;
}

// ---------------------------------------------------------------------------------------------
// What the document says about problem responses.

interface DocumentedResponse {
  where: string;
  status: number;
  response: Json;
  /** The application/problem+json schema, if the response is a problem. */
  problemSchema: Json | undefined;
  codes: string[];
}

/** Every documented response (operations, plus x-unmatched-requests), with the problem codes its schema allows. */
function documentedResponses(): DocumentedResponse[] {
  const found: DocumentedResponse[] = [];
  const collect = (where: string, base: string[]) => {
    const responses = valueAt([...base, 'responses']);
    assert.ok(isRecord(responses), `${where} documents its responses`);
    for (const status of Object.keys(responses)) {
      const response = deref(responses[status]);
      assert.ok(isRecord(response), `${where} ${status} resolves to a Response Object`);
      const problem = isRecord(response.content) ? response.content['application/problem+json'] : undefined;
      const schema = isRecord(problem) ? problem.schema : undefined;
      found.push({
        where,
        status: Number(status),
        response,
        problemSchema: isRecord(schema) ? schema : undefined,
        codes: isRecord(schema) ? problemCodesOf(schema) : [],
      });
    }
  };
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of HTTP_METHODS)
      if (isRecord(item) && isRecord(item[method])) collect(`${method.toUpperCase()} ${path}`, ['paths', path, method]);
  }
  collect('unmatched requests', ['x-unmatched-requests']);
  return found;
}

/** A problem response's schema is allOf [Problem, { status: {const}, code: {enum} }]. */
function problemCodesOf(schema: Json): string[] {
  const parts = Array.isArray(schema.allOf) ? (schema.allOf as unknown[]) : [];
  for (const part of parts) {
    const code = isRecord(part) && isRecord(part.properties) ? part.properties.code : undefined;
    if (isRecord(code) && Array.isArray(code.enum)) return code.enum as string[];
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Real responses against the document.

type Operation = { path: string; method: (typeof HTTP_METHODS)[number] } | 'unmatched';

/** The Parameter Objects of an operation, its path item's included (by name and location, the operation's win). */
function parametersOf(path: string, method: string): { pointer: string[]; parameter: Json }[] {
  const found = new Map<string, { pointer: string[]; parameter: Json }>();
  for (const base of [
    ['paths', path, 'parameters'],
    ['paths', path, method, 'parameters'],
  ]) {
    const list = valueAt(base);
    if (!Array.isArray(list)) continue;
    list.forEach((entry, index) => {
      const parameter = deref(entry);
      if (isRecord(parameter))
        found.set(`${String(parameter.in)} ${String(parameter.name)}`, { pointer: [...base, String(index)], parameter });
    });
  }
  return [...found.values()];
}

/**
 * Maps a real request path onto a documented path template: each `{name}` takes one non-empty
 * segment, except a last parameter marked `x-st-multi-segment`, which takes all the remaining ones
 * (OpenAPI has no multi-segment parameter). Returns the raw, still percent-encoded values, or
 * undefined when the path is not an instance of the template.
 */
function matchTemplate(template: string, method: string, pathname: string): Record<string, string> | undefined {
  const multiSegment = new Set(
    parametersOf(template, method)
      .filter(({ parameter }) => parameter['x-st-multi-segment'] === true)
      .map(({ parameter }) => String(parameter.name)),
  );
  const wanted = template.split('/');
  const given = pathname.split('/');
  const values: Record<string, string> = {};
  for (const [index, part] of wanted.entries()) {
    const name = /^\{([^}]+)\}$/.exec(part)?.[1];
    const value = given[index];
    if (name === undefined) {
      if (value !== part) return undefined;
    } else if (multiSegment.has(name) && index === wanted.length - 1) {
      const rest = given.slice(index).join('/');
      return rest === '' ? undefined : { ...values, [name]: rest };
    } else if (value === undefined || value === '') {
      return undefined;
    } else {
      values[name] = value;
    }
  }
  return given.length === wanted.length ? values : undefined;
}

function mediaTypeMatches(documented: string, actual: string): boolean {
  const [docType = '', ...docParams] = documented.split(';').map((part) => part.trim().toLowerCase());
  const [actualType = '', ...actualParams] = actual.split(';').map((part) => part.trim().toLowerCase());
  return docType === actualType && docParams.every((param) => actualParams.includes(param));
}

/**
 * Asserts the request's URL is an instance of the operation's path template (and, for a 2xx answer,
 * that its path parameters meet their schemas), then that status, headers, content type and body
 * match the document; returns the parsed body.
 */
async function assertConforms(response: Response, operation: Operation): Promise<unknown> {
  const label = operation === 'unmatched' ? 'an unmatched request' : `${operation.method.toUpperCase()} ${operation.path}`;
  const base =
    operation === 'unmatched'
      ? ['x-unmatched-requests', 'responses', String(response.status)]
      : ['paths', operation.path, operation.method, 'responses', String(response.status)];
  if (operation !== 'unmatched' && response.url !== '') {
    const pathname = new URL(response.url).pathname;
    const values = matchTemplate(operation.path, operation.method, pathname);
    assert.ok(values !== undefined, `${pathname} maps onto ${label}`);
    if (response.ok) {
      for (const { pointer, parameter } of parametersOf(operation.path, operation.method)) {
        const value = parameter.in === 'path' ? values[String(parameter.name)] : undefined;
        if (value === undefined) continue;
        const validate = schemaAt([...pointer, 'schema']);
        assert.ok(
          validate(value),
          `${label} path parameter ${String(parameter.name)}: ${JSON.stringify(value)} ${ajv.errorsText(validate.errors)}`,
        );
      }
    }
  }
  const text = await response.text();
  const documented = deref(locate(base).value);
  assert.ok(isRecord(documented), `${label} documents status ${response.status} (body: ${text})`);

  // CORS headers decide what a browser lets a page see: none may be sent undocumented.
  const documentedHeaders = Object.keys(isRecord(documented.headers) ? documented.headers : {}).map((name) => name.toLowerCase());
  for (const [name] of response.headers) {
    if (name.startsWith('access-control-'))
      assert.ok(documentedHeaders.includes(name), `${label} ${response.status} sends ${name}, which the document does not mention`);
  }

  for (const [name, header] of Object.entries(isRecord(documented.headers) ? documented.headers : {})) {
    const resolved = deref(header);
    const actual = response.headers.get(name);
    if (isRecord(resolved) && resolved.required === true)
      assert.ok(actual !== null, `${label} ${response.status} sends the documented header ${name}`);
    if (actual === null) continue;
    const validate = schemaAt([...base, 'headers', name, 'schema']);
    const schema = isRecord(resolved) && isRecord(resolved.schema) ? resolved.schema : {};
    const value = (schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(actual) ? Number(actual) : actual;
    assert.ok(validate(value), `${label} ${response.status} header ${name}: ${JSON.stringify(actual)} ${ajv.errorsText(validate.errors)}`);
  }

  if (documented.content === undefined) {
    assert.equal(text, '', `${label} ${response.status} documents no body`);
    return undefined;
  }
  const contentType = response.headers.get('content-type') ?? '';
  const mediaTypes = Object.keys(isRecord(documented.content) ? documented.content : {});
  const mediaType = mediaTypes.find((candidate) => mediaTypeMatches(candidate, contentType));
  assert.ok(mediaType !== undefined, `${label} ${response.status}: content type ${contentType} is one of ${mediaTypes.join(', ')}`);
  const body: unknown = /[/+]json$/.test(mediaType) ? JSON.parse(text) : text;
  const validate = schemaAt([...base, 'content', mediaType, 'schema']);
  assert.ok(validate(body), `${label} ${response.status} body ${text}: ${ajv.errorsText(validate.errors)}`);
  return body;
}

async function assertProblem(response: Response, operation: Operation, code: ProblemCode): Promise<Json> {
  assert.equal(response.status, PROBLEMS[code].status, `status for ${code}`);
  const body = (await assertConforms(response, operation)) as Json;
  assert.equal(body.code, code);
  assert.equal(body.status, PROBLEMS[code].status);
  assert.equal(body.title, PROBLEMS[code].title);
  assert.equal(body.type, `urn:st-api:problem:${code}`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// The apps: the embedded node; a web node (CORS for one web origin, CDNs in tokenized-manifest
// delivery) with a manifest origin on loopback, and the same node seven hours ago to issue URLs that
// have since expired; and apps built with doubles for what the embedded catalog cannot show.

const WEB_ORIGIN = 'https://www.example.com';
const PUBLIC_URL = 'https://play.example.com';
const MANIFEST_KEY = 'openapi-test-manifest-key-of-at-least-32-bytes';
const MANIFEST_MAX_BYTES = 4096;
const SEVEN_HOURS_MS = 7 * 3600_000;
const MASTER_PLAYLIST = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=854x480\n480p/index.m3u8\n';
const MEDIA_PLAYLIST = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\nseg-1.m4s\n#EXT-X-ENDLIST\n';
const MPD = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S" minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-live:2011">',
  '  <Period>',
  '    <AdaptationSet mimeType="video/mp4">',
  '      <SegmentTemplate initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg-$Number$.m4s" startNumber="1" duration="1" timescale="1"/>',
  '      <Representation id="480p" bandwidth="800000" width="854" height="480" codecs="avc1.64001f"/>',
  '    </AdaptationSet>',
  '  </Period>',
  '</MPD>',
  '',
].join('\n');

/** The manifest origin, by file name: the manifests, a missing one, an oversized one, an HTML page, a failing one. */
function serveOrigin(path: string): { status: number; type?: string; body: string } {
  const file = path.slice(path.lastIndexOf('/') + 1);
  if (file === 'master.m3u8') return { status: 200, type: 'application/vnd.apple.mpegurl', body: MASTER_PLAYLIST };
  if (file === 'index.m3u8') return { status: 200, type: 'application/vnd.apple.mpegurl', body: MEDIA_PLAYLIST };
  if (file === 'manifest.mpd') return { status: 200, type: 'application/dash+xml', body: MPD };
  if (file === 'huge.m3u8')
    return { status: 200, type: 'application/vnd.apple.mpegurl', body: `#EXTM3U\n${'#EXT-X-COMMENT\n'.repeat(MANIFEST_MAX_BYTES / 10)}` };
  if (file === 'page.m3u8') return { status: 200, type: 'text/html', body: '<!doctype html><title>Sign in</title>' };
  if (file === 'busy.m3u8') return { status: 503, body: 'busy' };
  return { status: 404, body: '' };
}

/** A loopback address nobody listens on: a server's port, once it has closed. */
async function closedOrigin(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return `http://127.0.0.1:${port}`;
}

function webConfig(manifestOrigin: string, downOrigin: string): Record<string, unknown> {
  const signer = { type: 'nginx', keys: [{ id: 'n1', active: true, secret: 'edge-secret-for-the-openapi-test' }] };
  return {
    cors: { allowedOrigins: [WEB_ORIGIN] },
    manifests: {
      publicUrl: PUBLIC_URL,
      keys: [{ id: 'm1', active: true, secret: MANIFEST_KEY }],
      fetchTimeoutMs: 2000,
      maxBytes: MANIFEST_MAX_BYTES,
    },
    cdns: [
      { name: 'nginx-q', origin: 'https://edge.example.com', delivery: { mode: 'tokenized-manifest', manifestOrigin }, signer },
      {
        name: 'nginx-q-down',
        origin: 'https://edge.example.com',
        delivery: { mode: 'tokenized-manifest', manifestOrigin: downOrigin },
        signer,
      },
      { name: 'nginx-path', origin: 'https://edge.example.com', weight: 0, signer },
    ],
  };
}

let node: TestNode;
let webNode: TestNode;
let pastNode: TestNode;
let originServer: Server | undefined;
/** The web node's CDN draw: below 0.5 picks nginx-q, above it nginx-q-down (whose origin is down). */
let cdnDraw = 0;

before(async () => {
  node = await startTestNode({ random: () => 0 });
  originServer = createServer((req, res) => {
    const { status, type, body } = serveOrigin(req.url ?? '/');
    res.writeHead(status, type === undefined ? {} : { 'content-type': type }).end(body);
  }).listen(0, '127.0.0.1');
  await once(originServer, 'listening');
  const overrides = webConfig(`http://127.0.0.1:${(originServer.address() as AddressInfo).port}`, await closedOrigin());
  webNode = await startTestNode({ overrides, random: () => cdnDraw });
  pastNode = await startTestNode({ overrides, random: () => 0, now: () => Date.now() - SEVEN_HOURS_MS });
});
after(async () => {
  await Promise.allSettled([node?.close(), webNode?.close(), pastNode?.close()]);
  originServer?.closeAllConnections();
  originServer?.close();
});

/** The same kinds of dependencies service.ts builds for the embedded node, with some replaced. */
async function withApp<T>(overrides: Partial<AppDeps>, use: (baseUrl: string) => Promise<T>): Promise<T> {
  const { config } = node;
  const app = createApp({
    catalog: new MemoryCatalogStore(demoDataset(Date.now())),
    cdns: cdnsFromConfig(config.cdns),
    policy: config.playback,
    now: Date.now,
    grantCache: new GrantCache(Date.now),
    random: () => 0,
    verifyToken: createTokenVerifier({
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      leewaySeconds: config.auth.leewaySeconds,
      maxTokenBytes: config.auth.maxTokenBytes,
      keys: config.auth.keys.map((key) => ({ kid: key.kid, algorithm: key.algorithm, key: tokenKey(key.algorithm, key.key) })),
    }),
    rateLimiter: NO_RATE_LIMIT,
    metrics: new Metrics({ defaultMetrics: false }),
    logger: createLogger({ level: 'silent', program: 'st-api-test' }),
    build: { version: '0.0.0-test', commit: 'unknown', node: process.version },
    probes: [okProbe('node'), okProbe('mysql'), okProbe('keys')],
    probeTimeoutMs: 300,
    ...overrides,
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

function okProbe(name: string, essential = true): Probe {
  return { name, essential, run: () => Promise.resolve({ status: 'ok', text: 'ok(1ms)' }) };
}

function failingCatalog(error: Error): CatalogStore {
  return { playData: () => Promise.reject(error), deviceClass: () => Promise.reject(error) };
}

const refusingLimiter: RateLimiter = { consume: () => Promise.resolve({ allowed: false, retryAfterSeconds: 42 }) };

const PLAY = { path: '/v1/playback-urls', method: 'post' } as const;
const PREFLIGHT = { path: '/v1/playback-urls', method: 'options' } as const;
const MANIFEST = { path: '/v1/manifests/{cdn}/{keyId}/{expires}/{hmac}/{path}', method: 'get' } as const;
const GOOD_BODY = { contentId: 'tt-demo-0001', device: 'web' };

function post(baseUrl: string, body: unknown, token: string): Promise<Response> {
  return fetch(`${baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

/** A browser's CORS preflight for a POST to the playback resource from `origin` (bounded at 10 s). */
function preflight(baseUrl: string, origin: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseUrl}/v1/playback-urls`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', ...headers },
    signal: AbortSignal.timeout(10_000),
  });
}

/** A client token like the demo auth service's, with chosen claims, key or algorithm. */
function forge(claims: Json, options: { key?: string; algorithm?: jwt.Algorithm } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, sub: 'demo-user', iat: now, exp: now + 600, ...claims },
    options.key ?? node.demo.clientKeys.privatePem,
    {
      algorithm: options.algorithm ?? 'RS256',
      ...(options.algorithm?.startsWith('HS') ? {} : { keyid: 'demo-rs256' }),
    },
  );
}

/**
 * A real manifest URL: a play through a tokenized-manifest CDN (on `on`, with the web node's CDN
 * draw), moved from the public URL onto the web node's address.
 */
async function manifestUrl(options: { on?: TestNode; draw?: number; protocol?: 'hls' | 'dash' } = {}): Promise<string> {
  const on = options.on ?? webNode;
  cdnDraw = options.draw ?? 0;
  const response = await on.play(
    { contentId: 'tt-demo-0001', device: 'web', protocol: options.protocol ?? 'hls' },
    on.tokenFor('demo-user'),
  );
  const body = (await response.json()) as { url: string; delivery: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.delivery, 'tokenized-manifest');
  assert.ok(body.url.startsWith(`${PUBLIC_URL}/v1/manifests/`), body.url);
  return webNode.baseUrl + new URL(body.url).pathname;
}

/** The same manifest URL with some of its parts replaced (`path` without its leading slash). */
function altered(url: string, change: { cdn?: string; keyId?: string; hmac?: string; path?: string }): string {
  const { origin, pathname } = new URL(url);
  const [, , , cdn = '', keyId = '', expires = '', hmac = '', ...path] = pathname.split('/');
  return `${origin}/v1/manifests/${change.cdn ?? cdn}/${change.keyId ?? keyId}/${expires}/${change.hmac ?? hmac}/${change.path ?? path.join('/')}`;
}

/** Another file in the signed directory (`vod/tt-demo-0001/hls/1080p/`): the token covers it. */
const inSignedDirectory = (url: string, file: string) => url.replace(/[^/]+$/, file);

const getManifest = (url: string) => fetch(url, { signal: AbortSignal.timeout(10_000) });

interface ProblemCase {
  code: ProblemCode;
  why: string;
  operation: Operation;
  send(): Promise<Response>;
  check?(response: Response, body: Json): void;
}

const now = () => Math.floor(Date.now() / 1000);
// Generated at load, before the node starts: a 2048-bit key blocks the event loop, which the lag probe would see.
const OTHER_RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A manifest-route case: the URL `from` makes of a fresh manifest URL. */
function manifestCase(code: ProblemCode, why: string, from: (url: string) => string, check?: ProblemCase['check']): ProblemCase {
  const send = async () => getManifest(from(await manifestUrl()));
  return check === undefined ? { code, why, operation: MANIFEST, send } : { code, why, operation: MANIFEST, send, check };
}

/** A manifest-route case: `file` asked for in the directory a fresh manifest URL signs. */
const signedDirectoryCase = (code: ProblemCode, why: string, file: string, check?: ProblemCase['check']): ProblemCase =>
  manifestCase(code, why, (url) => inSignedDirectory(url, file), check);

/** A manifest-route case: a fresh manifest URL with `changes` to its parts. */
const alteredCase = (code: ProblemCode, why: string, changes: Parameters<typeof altered>[1], check?: ProblemCase['check']): ProblemCase =>
  manifestCase(code, why, (url) => altered(url, changes), check);

const problemCases: ProblemCase[] = [
  { code: 'MALFORMED_JSON', why: 'the body is truncated JSON', operation: PLAY, send: () => node.play('{"contentId": "tt-demo-0001", ') },
  { code: 'MALFORMED_JSON', why: 'the body is a JSON string, not an object', operation: PLAY, send: () => node.play('"tt-demo-0001"') },
  { code: 'TOKEN_MISSING', why: 'there is no Authorization header', operation: PLAY, send: () => node.play(GOOD_BODY, null) },
  { code: 'TOKEN_MALFORMED', why: 'the bearer is not a JWT', operation: PLAY, send: () => node.play(GOOD_BODY, 'not-a-jwt') },
  {
    code: 'TOKEN_ALGORITHM_REJECTED',
    why: 'the token is HS256 where only RS256 is accepted',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, forge({}, { key: 'a-shared-secret-nobody-configured', algorithm: 'HS256' })),
  },
  {
    code: 'TOKEN_SIGNATURE_INVALID',
    why: 'the token is signed with another RSA key',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, forge({}, { key: OTHER_RSA_KEY })),
  },
  {
    code: 'TOKEN_EXPIRED',
    why: 'the token expired an hour ago',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, forge({ iat: now() - 7200, exp: now() - 3600 })),
  },
  {
    code: 'TOKEN_NOT_YET_VALID',
    why: 'the token is valid from an hour hence',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, forge({ nbf: now() + 3600, exp: now() + 7200 })),
  },
  {
    code: 'TOKEN_CLAIMS_INVALID',
    why: 'the token is for another audience',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, forge({ aud: 'another-service' })),
  },
  { code: 'NOT_PURCHASED', why: 'the viewer bought nothing', operation: PLAY, send: () => node.play(GOOD_BODY, node.tokenFor('nobody')) },
  {
    code: 'RENTAL_EXPIRED',
    why: 'the rental is over',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0004', device: 'web' }, node.tokenFor('demo-user')),
  },
  {
    code: 'SUBSCRIPTION_EXPIRED',
    why: 'the plan has lapsed',
    operation: PLAY,
    send: () => node.play(GOOD_BODY, node.tokenFor('lapsed-user')),
  },
  {
    code: 'DEVICE_NOT_ALLOWED',
    why: 'a phone-only plan plays on a TV',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0002', device: 'tv' }, node.tokenFor('mobile-user')),
  },
  {
    code: 'QUALITY_NOT_AVAILABLE',
    why: 'no rendition is under the requested ceiling',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0001', device: 'web', quality: '360p' }, node.tokenFor('sd-buyer')),
  },
  {
    code: 'CONTENT_NOT_FOUND',
    why: 'the content does not exist',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-nope', device: 'web' }, node.tokenFor('demo-user')),
  },
  { code: 'NOT_FOUND', why: 'the path does not exist', operation: 'unmatched', send: () => fetch(`${node.baseUrl}/v1/nothing-here`) },
  {
    code: 'NOT_FOUND',
    why: 'a health path is POSTed to',
    operation: 'unmatched',
    send: () => fetch(`${node.baseUrl}/health/live`, { method: 'POST' }),
  },
  {
    code: 'METHOD_NOT_ALLOWED',
    why: 'the playback resource is fetched with GET',
    operation: { path: '/v1/playback-urls', method: 'get' },
    send: () => fetch(`${node.baseUrl}/v1/playback-urls`),
  },
  {
    code: 'METHOD_NOT_ALLOWED',
    why: 'the playback resource is asked to PUT',
    operation: { path: '/v1/playback-urls', method: 'put' },
    send: () => fetch(`${node.baseUrl}/v1/playback-urls`, { method: 'PUT' }),
  },
  {
    code: 'TOKEN_MISSING',
    why: 'an allowed web origin POSTs without a token',
    operation: PLAY,
    send: () =>
      fetch(`${webNode.baseUrl}/v1/playback-urls`, {
        method: 'POST',
        headers: { origin: WEB_ORIGIN, 'content-type': 'application/json' },
        body: JSON.stringify(GOOD_BODY),
      }),
    check: (response) => {
      assert.equal(response.headers.get('access-control-allow-origin'), WEB_ORIGIN, 'the page may read the refusal');
      assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
    },
  },
  {
    code: 'NOT_FOUND',
    why: 'a manifest URL reaches a node without a manifests configuration',
    operation: 'unmatched',
    send: async () => getManifest((await manifestUrl()).replace(webNode.baseUrl, node.baseUrl)),
  },
  {
    code: 'MANIFEST_TOKEN_INVALID',
    why: "a manifest URL's hmac is tampered with",
    operation: MANIFEST,
    send: async () => {
      const url = await manifestUrl();
      const hmac = new URL(url).pathname.split('/')[6] ?? '';
      return getManifest(altered(url, { hmac: (hmac.startsWith('A') ? 'B' : 'A') + hmac.slice(1) }));
    },
  },
  alteredCase('MANIFEST_TOKEN_INVALID', "a manifest URL's token is used for another title", {
    path: 'vod/tt-demo-0002/hls/1080p/master.m3u8',
  }),
  alteredCase('MANIFEST_TOKEN_INVALID', "a manifest URL's token is used for another ceiling's directory", {
    path: 'vod/tt-demo-0001/hls/2160p/master.m3u8',
  }),
  alteredCase('MANIFEST_TOKEN_INVALID', 'a manifest URL names a key id st-api does not have', { keyId: 'm9' }),
  {
    code: 'MANIFEST_TOKEN_EXPIRED',
    why: 'a manifest URL issued seven hours ago is fetched now',
    operation: MANIFEST,
    send: async () => getManifest(await manifestUrl({ on: pastNode })),
  },
  alteredCase('NOT_FOUND', 'a manifest URL names a CDN that is not configured', { cdn: 'nowhere' }, (response) =>
    assert.equal(response.headers.get('access-control-allow-origin'), '*'),
  ),
  alteredCase('NOT_FOUND', 'a manifest URL names a CDN in path-token delivery', { cdn: 'nginx-path' }),
  signedDirectoryCase('NOT_FOUND', 'a manifest URL names a segment, not a playlist or an MPD', '480p/seg-1.m4s'),
  signedDirectoryCase('NOT_FOUND', 'a manifest URL has a segment that is not UTF-8 once decoded', '%ff/master.m3u8'),
  signedDirectoryCase('MANIFEST_NOT_FOUND', 'the origin answers 404 for a playlist in the signed directory', 'missing.m3u8', (response) =>
    assert.equal(response.headers.get('access-control-allow-origin'), '*', 'a web player sees the 404'),
  ),
  signedDirectoryCase('MANIFEST_ORIGIN_INVALID', "the origin's playlist is larger than manifests.maxBytes", 'huge.m3u8'),
  signedDirectoryCase('MANIFEST_ORIGIN_INVALID', 'the origin answers an HTML page for a playlist', 'page.m3u8'),
  signedDirectoryCase('MANIFEST_ORIGIN_UNAVAILABLE', 'the origin answers 503 and no copy is cached', 'busy.m3u8', (response) =>
    assert.equal(response.headers.get('retry-after'), '5'),
  ),
  {
    code: 'MANIFEST_ORIGIN_UNAVAILABLE',
    why: "the CDN's manifest origin refuses connections and no copy is cached",
    operation: MANIFEST,
    send: async () => getManifest(await manifestUrl({ draw: 0.9 })),
    check: (response) => assert.equal(response.headers.get('retry-after'), '5'),
  },
  {
    code: 'BODY_TOO_LARGE',
    why: 'the body is over 4 KB',
    operation: PLAY,
    send: () => node.play(JSON.stringify({ ...GOOD_BODY, pad: 'x'.repeat(20_000) })),
  },
  {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    why: 'the body is text/plain',
    operation: PLAY,
    send: () =>
      fetch(`${node.baseUrl}/v1/playback-urls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${node.tokenFor('demo-user')}`, 'content-type': 'text/plain' },
        body: 'contentId=tt-demo-0001',
      }),
  },
  {
    code: 'INVALID_REQUEST',
    why: 'the contentId is a number',
    operation: PLAY,
    send: () => node.play({ contentId: 42, device: 'web' }),
    check: (_response, body) =>
      assert.deepEqual(
        (body.errors as { path: string }[]).map((error) => error.path),
        ['contentId'],
      ),
  },
  {
    code: 'UNKNOWN_DEVICE',
    why: 'the device class does not exist',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0001', device: 'fridge' }),
  },
  {
    code: 'PROTOCOL_NOT_SUPPORTED',
    why: 'DASH is asked for on iOS',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0001', device: 'ios', protocol: 'dash' }),
  },
  {
    code: 'PROTOCOL_NOT_AVAILABLE',
    why: 'DASH is asked for an HLS-only title',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0003', device: 'tv', protocol: 'dash' }, node.tokenFor('premium-user')),
  },
  {
    code: 'RATE_LIMITED',
    why: 'the rate limiter refuses the viewer',
    operation: PLAY,
    send: () => withApp({ rateLimiter: refusingLimiter }, (baseUrl) => post(baseUrl, GOOD_BODY, node.tokenFor('demo-user'))),
    check: (response) => assert.equal(response.headers.get('retry-after'), '42'),
  },
  {
    code: 'INTERNAL_ERROR',
    why: 'the catalog throws a plain error (a bug)',
    operation: PLAY,
    send: () =>
      withApp({ catalog: failingCatalog(new Error('SELECT * FROM secrets: boom')) }, (baseUrl) =>
        post(baseUrl, GOOD_BODY, node.tokenFor('demo-user')),
      ),
    check: (_response, body) => {
      assert.equal(body.detail, undefined, 'a bug says nothing more than its title');
      assert.doesNotMatch(JSON.stringify(body), /SELECT|boom/);
    },
  },
  {
    code: 'DEPENDENCY_UNAVAILABLE',
    why: 'the catalog is unavailable',
    operation: PLAY,
    send: () =>
      withApp(
        {
          catalog: failingCatalog(
            new CatalogUnavailableError('down', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }),
          ),
        },
        (baseUrl) => post(baseUrl, GOOD_BODY, node.tokenFor('demo-user')),
      ),
    check: (response, body) => {
      assert.equal(response.headers.get('retry-after'), '5');
      assert.equal(body.detail, 'The catalog database is unavailable', 'the HTTP layer words it; nothing of the cause leaks');
    },
  },
  {
    code: 'DEPENDENCY_UNAVAILABLE',
    why: 'no CDN is in rotation',
    operation: PLAY,
    send: () =>
      withApp({ cdns: cdnsFromConfig(node.config.cdns).map((cdn) => ({ ...cdn, weight: 0 })) }, (baseUrl) =>
        post(baseUrl, GOOD_BODY, node.tokenFor('demo-user')),
      ),
    check: (response) => assert.equal(response.headers.get('retry-after'), '30'),
  },
];

// ---------------------------------------------------------------------------------------------

describe('when the OpenAPI document is read', () => {
  it('then it is OpenAPI 3.1 and every $ref in it resolves to something', () => {
    assert.match(String(doc.openapi), /^3\.1\.\d+$/);
    const refs: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (isRecord(value)) {
        if (typeof value.$ref === 'string') refs.push(value.$ref);
        Object.values(value).forEach(walk);
      }
    };
    walk(doc);
    assert.ok(refs.length > 20);
    for (const ref of refs) assert.notEqual(valueAt(parseRef(ref)), undefined, `${ref} resolves`);
  });

  it('then every schema compiles under JSON Schema 2020-12 and every security requirement names a scheme', () => {
    for (const name of Object.keys((doc.components as { schemas: Json }).schemas)) schemaAt(['components', 'schemas', name]);
    const schemes = Object.keys((doc.components as { securitySchemes: Json }).securitySchemes);
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const method of HTTP_METHODS) {
        const operation = isRecord(item) ? item[method] : undefined;
        if (!isRecord(operation)) continue;
        for (const requirement of (operation.security ?? []) as Json[])
          for (const scheme of Object.keys(requirement)) assert.ok(schemes.includes(scheme), `${method} ${path}: ${scheme}`);
        if (isRecord(operation.requestBody)) schemaAt(['paths', path, method, 'requestBody', 'content', 'application/json', 'schema']);
        for (const status of Object.keys(operation.responses as Json)) {
          const content = locate(['paths', path, method, 'responses', status, 'content']).value;
          for (const mediaType of Object.keys(isRecord(content) ? content : {}))
            schemaAt(['paths', path, method, 'responses', status, 'content', mediaType, 'schema']);
        }
      }
    }
  });

  it('then the Problem code enum is exactly the PROBLEMS table, so a new code cannot ship undocumented', () => {
    const code = locate(['components', 'schemas', 'Problem', 'properties', 'code']).value as { enum: string[] };
    assert.deepEqual([...code.enum].sort(), [...PROBLEM_CODES].sort());
  });

  it('then every code is documented under exactly the status PROBLEMS gives it, and each problem response names its codes', () => {
    const responses = documentedResponses();
    const statusesOf = new Map<string, Set<number>>();
    for (const { where, status, response, problemSchema, codes } of responses) {
      if (problemSchema === undefined) continue;
      assert.ok(codes.length > 0, `${where} ${status} lists its problem codes`);
      assert.deepEqual((problemSchema.allOf as Json[])[0], { $ref: '#/components/schemas/Problem' }, `${where} ${status} is a Problem`);
      assert.ok(isRecord(response.headers) && 'Cache-Control' in response.headers, `${where} ${status} documents Cache-Control`);
      for (const code of codes) {
        assert.ok(code in PROBLEMS, `${where} ${status} documents ${code}, which is not in PROBLEMS`);
        assert.match(String(response.description), new RegExp(`\`${code}\``), `${where} ${status} explains ${code} in its description`);
        statusesOf.set(code, (statusesOf.get(code) ?? new Set()).add(status));
      }
    }
    for (const code of PROBLEM_CODES) {
      assert.deepEqual(
        [...(statusesOf.get(code) ?? [])],
        [PROBLEMS[code].status],
        `${code} is documented under status ${PROBLEMS[code].status} only`,
      );
    }
  });

  it('then every path template parameter is declared in: path and required, and only a last one spans several segments', () => {
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] ?? '');
      for (const method of HTTP_METHODS) {
        if (!isRecord(item) || !isRecord(item[method])) continue;
        const declared = parametersOf(path, method).filter(({ parameter }) => parameter.in === 'path');
        assert.deepEqual(
          declared.map(({ parameter }) => parameter.name).sort(),
          [...names].sort(),
          `${method} ${path} declares exactly its template's parameters`,
        );
        for (const { parameter } of declared) {
          assert.equal(parameter.required, true, `${method} ${path}: ${String(parameter.name)} is required`);
          if (parameter['x-st-multi-segment'] === true)
            assert.equal(parameter.name, names.at(-1), `${method} ${path}: only the last parameter may span segments`);
        }
      }
    }
    const manifestPath = parametersOf(MANIFEST.path, MANIFEST.method).find(({ parameter }) => parameter.name === 'path');
    assert.equal(manifestPath?.parameter['x-st-multi-segment'], true, 'the manifest path is marked as several segments');
  });

  it('then a real manifest URL maps onto its operation, and nothing else does', () => {
    const url = '/v1/manifests/nginx-q/m1/1796059719/3GUCUAaAuA0NkEPJNrkJtA3GUCUAaAuA0NkEPJNrkJt/vod/tt-demo-0001/hls/1080p/master.m3u8';
    assert.deepEqual(matchTemplate(MANIFEST.path, MANIFEST.method, url), {
      cdn: 'nginx-q',
      keyId: 'm1',
      expires: '1796059719',
      hmac: '3GUCUAaAuA0NkEPJNrkJtA3GUCUAaAuA0NkEPJNrkJt',
      path: 'vod/tt-demo-0001/hls/1080p/master.m3u8',
    });
    assert.equal(
      matchTemplate(MANIFEST.path, MANIFEST.method, '/v1/manifests/nginx-q/m1/1796059719/h/'),
      undefined,
      'the path takes at least one segment',
    );
    assert.equal(matchTemplate(PLAY.path, PLAY.method, '/v1/playback-urls/x'), undefined);
    assert.deepEqual(matchTemplate(PLAY.path, PLAY.method, '/v1/playback-urls'), {});
  });

  it('then the headers that go with a status are documented: WWW-Authenticate on 401, Retry-After on 429 and 503, Allow on 405', () => {
    const expected: Record<number, string> = { 401: 'WWW-Authenticate', 405: 'Allow', 429: 'Retry-After', 503: 'Retry-After' };
    for (const { where, status, response, codes } of documentedResponses()) {
      const header = expected[status];
      if (header === undefined || codes.length === 0) continue;
      const documented = isRecord(response.headers) ? deref(response.headers[header]) : undefined;
      assert.ok(isRecord(documented) && documented.required === true, `${where} ${status} documents ${header} as required`);
    }
  });
});

describe('when the request body schema is compared with the zod schema', () => {
  it('then it is the same JSON Schema zod derives for the input (patterns, enums, default, required)', () => {
    const strip = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(strip);
      if (!isRecord(value)) return value;
      return Object.fromEntries(
        Object.entries(value)
          .filter(([key]) => !['description', 'examples', '$schema'].includes(key))
          .map(([key, inner]) => [key, strip(inner)]),
      );
    };
    const documented = strip(locate(['components', 'schemas', 'PlaybackRequest']).value);
    assert.deepEqual(documented, strip(z.toJSONSchema(playbackRequestSchema, { io: 'input' })));
  });

  const samples: { body: unknown; valid: boolean; why: string }[] = [
    { body: { contentId: 'tt-demo-0001', device: 'web' }, valid: true, why: 'the two required fields' },
    { body: { contentId: 'A', device: 'tv', quality: 'auto', protocol: 'hls' }, valid: true, why: 'every field' },
    {
      body: { contentId: `a${'_'.repeat(63)}`, device: `x${'-'.repeat(31)}`, quality: '240p', protocol: 'dash' },
      valid: true,
      why: 'the longest names',
    },
    {
      body: { contentId: 'tt-demo-0001', device: 'legacy_stb2', extra: { anything: true } },
      valid: true,
      why: 'unknown members (ignored)',
    },
    { body: { contentId: `a${'b'.repeat(64)}`, device: 'web' }, valid: false, why: 'a 65-character contentId' },
    { body: { contentId: '-tt', device: 'web' }, valid: false, why: 'a contentId starting with -' },
    { body: { contentId: '', device: 'web' }, valid: false, why: 'an empty contentId' },
    { body: { contentId: 'tt-demo-0001\n', device: 'web' }, valid: false, why: 'a contentId with a trailing newline' },
    { body: { contentId: '../../etc/passwd', device: 'web' }, valid: false, why: 'a path-traversal contentId' },
    { body: { contentId: 42, device: 'web' }, valid: false, why: 'a number for contentId' },
    { body: { device: 'web' }, valid: false, why: 'no contentId' },
    { body: { contentId: 'tt-demo-0001' }, valid: false, why: 'no device' },
    { body: { contentId: 'tt-demo-0001', device: 'WEB' }, valid: false, why: 'an upper-case device' },
    { body: { contentId: 'tt-demo-0001', device: '4k-tv' }, valid: false, why: 'a device starting with a digit' },
    { body: { contentId: 'tt-demo-0001', device: 'web', quality: '8k' }, valid: false, why: 'an unknown quality' },
    { body: { contentId: 'tt-demo-0001', device: 'web', quality: null }, valid: false, why: 'a null quality' },
    { body: { contentId: 'tt-demo-0001', device: 'web', protocol: 'rtmp' }, valid: false, why: 'an unknown protocol' },
    { body: ['tt-demo-0001'], valid: false, why: 'an array' },
    { body: null, valid: false, why: 'null' },
  ];
  for (const sample of samples) {
    it(`then both ${sample.valid ? 'accept' : 'refuse'} ${sample.why}`, () => {
      const validate = schemaAt(['components', 'schemas', 'PlaybackRequest']);
      assert.equal(playbackRequestSchema.safeParse(sample.body).success, sample.valid, 'zod');
      assert.equal(validate(structuredClone(sample.body)), sample.valid, `OpenAPI: ${ajv.errorsText(validate.errors)}`);
    });
  }

  it('then the documented quality default is the one zod fills in', () => {
    const quality = locate(['components', 'schemas', 'PlaybackRequest', 'properties', 'quality']).value as { default: string };
    assert.equal(playbackRequestSchema.parse({ contentId: 'tt-demo-0001', device: 'web' }).quality, quality.default);
  });
});

describe('when the real app answers', () => {
  it('then a play is a 200 PlaybackUrl with Cache-Control: no-store, as documented', async () => {
    const response = await node.play({ contentId: 'tt-demo-0001', device: 'web' }, node.tokenFor('demo-user'));
    assert.equal(response.status, 200);
    const body = (await assertConforms(response, PLAY)) as Json;
    assert.equal(body.cdn, 'cloudfront');
  });

  it('then a play through a tokenized-manifest CDN, from an allowed web origin, is a 200 PlaybackUrl with CORS headers, as documented', async () => {
    cdnDraw = 0;
    const response = await fetch(`${webNode.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { origin: WEB_ORIGIN, authorization: `Bearer ${webNode.tokenFor('demo-user')}`, 'content-type': 'application/json' },
      body: JSON.stringify(GOOD_BODY),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), WEB_ORIGIN);
    const body = (await assertConforms(response, PLAY)) as Json;
    assert.equal(body.delivery, 'tokenized-manifest');
    const url = new URL(String(body.url));
    assert.equal(url.origin, PUBLIC_URL);
    assert.ok(matchTemplate(MANIFEST.path, MANIFEST.method, url.pathname), `${url.pathname} is a manifest URL as documented`);
  });

  it('then a CORS preflight from an allowed origin is a 204 with the documented Access-Control-* headers', async () => {
    const response = await preflight(webNode.baseUrl, WEB_ORIGIN, { 'access-control-request-headers': 'authorization,content-type' });
    assert.equal(response.status, 204);
    const headers = response.headers;
    assert.equal(await assertConforms(response, PREFLIGHT), undefined);
    assert.equal(headers.get('access-control-allow-origin'), WEB_ORIGIN);
    assert.equal(headers.get('access-control-max-age'), '600');
  });

  it('then a CORS preflight from another origin is 204 with no Access-Control-* header, as documented', async () => {
    const response = await preflight(webNode.baseUrl, 'https://evil.example.net');
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('allow'), 'POST, OPTIONS');
    const headers = response.headers;
    await assertConforms(response, PREFLIGHT);
    assert.deepEqual(
      [...headers.keys()].filter((name) => name.startsWith('access-control-')),
      [],
    );
  });

  it('then a CORS preflight on a node with no CORS origins is 204 with no Access-Control-* header, as documented', async () => {
    const response = await preflight(node.baseUrl, WEB_ORIGIN);
    assert.equal(response.status, 204);
    await assertConforms(response, PREFLIGHT);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });

  it("then a play's manifest URL answers 200 with the tokenized HLS playlists, as documented", async () => {
    const master = await manifestUrl();
    const response = await getManifest(master);
    assert.equal(response.status, 200);
    const headers = response.headers;
    assert.equal(await assertConforms(response, MANIFEST), MASTER_PLAYLIST, 'variant playlists stay relative: they come back here');
    assert.equal(headers.get('cache-control'), 'private, max-age=60');
    assert.equal(headers.get('access-control-allow-origin'), '*');

    const variant = await getManifest(new URL('480p/index.m3u8', master).href);
    assert.equal(variant.status, 200);
    const text = String(await assertConforms(variant, MANIFEST));
    assert.match(
      text,
      /^#EXT-X-MAP:URI="https:\/\/edge\.example\.com\/vod\/tt-demo-0001\/hls\/1080p\/480p\/init\.mp4\?md5=[^"&]+&expires=\d+"$/m,
    );
    assert.match(text, /^https:\/\/edge\.example\.com\/vod\/tt-demo-0001\/hls\/1080p\/480p\/seg-1\.m4s\?md5=[^&\s]+&expires=\d+$/m);
  });

  it("then a play's DASH manifest URL answers 200 with the tokenized MPD, as documented", async () => {
    const response = await getManifest(await manifestUrl({ protocol: 'dash' }));
    assert.equal(response.status, 200);
    const text = String(await assertConforms(response, MANIFEST));
    assert.match(text, /<BaseURL>https:\/\/edge\.example\.com\/vod\/tt-demo-0001\/dash\/1080p\/<\/BaseURL>/);
    assert.match(text, /media="\$RepresentationID\$\/seg-\$Number\$\.m4s\?md5=[^"&]+&amp;expires=\d+"/);
  });

  it('then every problem code in PROBLEMS has a case below', () => {
    assert.deepEqual([...new Set(problemCases.map((problem) => problem.code))].sort(), [...PROBLEM_CODES].sort());
  });

  for (const problem of problemCases) {
    it(`when ${problem.why}, then ${PROBLEMS[problem.code].status} ${problem.code} matches the document`, async () => {
      const response = await problem.send();
      const headers = response.headers;
      const body = await assertProblem(response, problem.operation, problem.code);
      assert.match(headers.get('content-type') ?? '', /^application\/problem\+json(;|$)/);
      assert.equal(headers.get('cache-control'), 'no-store');
      problem.check?.(response, body);
    });
  }

  it('then /health/live is ok with the version and commit the node runs', async () => {
    const response = await fetch(`${node.baseUrl}/health/live`);
    assert.equal(response.status, 200);
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(await assertConforms(response, { path: '/health/live', method: 'get' }), `ok version=${version} commit=unknown`);
  });

  it('then /health/deep on the embedded node is 200 with an ok line', async () => {
    // The lag probe reports the worst loop delay since the previous check; the tests above (Ajv
    // compiling, RSA signing) stall the loop, so a first check clears that window.
    await (await fetch(`${node.baseUrl}/health/deep`)).text();
    const response = await fetch(`${node.baseUrl}/health/deep`);
    assert.equal(response.status, 200);
    assert.match(String(await assertConforms(response, { path: '/health/deep', method: 'get' })), /^ok node=serving mysql=embedded /);
  });

  it('then /health/deep is 503 with a fail line when an essential probe fails', async () => {
    const mysqlDown: Probe = {
      name: 'mysql',
      essential: true,
      run: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    };
    const body = await withApp({ probes: [okProbe('node'), mysqlDown, okProbe('keys')] }, async (baseUrl) => {
      const response = await fetch(`${baseUrl}/health/deep`);
      assert.equal(response.status, 503);
      return assertConforms(response, { path: '/health/deep', method: 'get' });
    });
    assert.equal(body, 'fail node=ok(1ms) mysql=error(econnrefused) keys=ok(1ms)');
  });

  it('then /health/deep is 429 with a warn line when only a non-essential probe fails', async () => {
    const redisDown: Probe = {
      name: 'redis',
      essential: false,
      run: () => Promise.resolve({ status: 'warn', text: 'down(reconnecting)' }),
    };
    const body = await withApp({ probes: [okProbe('node'), okProbe('mysql'), redisDown] }, async (baseUrl) => {
      const response = await fetch(`${baseUrl}/health/deep`);
      assert.equal(response.status, 429);
      return assertConforms(response, { path: '/health/deep', method: 'get' });
    });
    assert.equal(body, 'warn node=ok(1ms) mysql=ok(1ms) redis=down(reconnecting)');
  });

  it('then /openapi.json is this document as JSON, with the base URL the request used as its server, as documented', async () => {
    const response = await fetch(`${node.baseUrl}/openapi.json`);
    assert.equal(response.status, 200);
    const etag = response.headers.get('etag') ?? '';
    const served = (await assertConforms(response, { path: '/openapi.json', method: 'get' })) as Json;
    assert.deepEqual(served.servers, [{ url: node.baseUrl, description: 'this st-api node, as the request reached it' }]);
    assert.deepEqual({ ...served, servers: undefined }, { ...doc, servers: undefined }, 'the same document as api/openapi.yaml');
    // node:http, not fetch: fetch marks a conditional request no-cache, which (rightly) is never 304.
    const { port } = new URL(node.baseUrl);
    const again = await new Promise<number | undefined>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/openapi.json', headers: { 'if-none-match': etag }, timeout: 10_000 }, (answer) => {
        answer.resume();
        resolve(answer.statusCode);
      }).on('error', reject);
    });
    assert.equal(again, 304);
  });

  it('then /metrics is Prometheus text, as documented', async () => {
    const response = await fetch(`${node.baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(String(await assertConforms(response, { path: '/metrics', method: 'get' })), /^# HELP st_api_/m);
  });
});
