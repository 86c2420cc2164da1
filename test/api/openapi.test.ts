// The OpenAPI document (api/openapi.yaml) is a contract: these tests hold it to the code. The document
// itself must be sound and enumerate exactly the PROBLEMS table with the right statuses; real responses
// from the app — a play, every problem code, health and metrics — must match what it documents; and its
// request body schema must accept and refuse what the zod schema does.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
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
import type { CatalogStore } from '../../api/catalog/types.ts';
import { DEMO_AUDIENCE, DEMO_ISSUER } from '../../api/demo/embedded.ts';
import { AppError, PROBLEMS, type ProblemCode } from '../../api/errors.ts';
import type { Probe } from '../../api/health/deep-health.ts';
import { createLogger } from '../../api/logger.ts';
import { Metrics } from '../../api/metrics.ts';
import { NO_RATE_LIMIT, type RateLimiter } from '../../api/playback/rate-limit.ts';
import { playbackRequestSchema } from '../../api/playback/request.ts';
import { cdnsFromConfig } from '../../api/service.ts';
import { startTestNode, type TestNode } from '../support/service.ts';

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
  return ref.slice(2).split('/').map((token) => decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~'));
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
      found.push({ where, status: Number(status), response, problemSchema: isRecord(schema) ? schema : undefined, codes: isRecord(schema) ? problemCodesOf(schema) : [] });
    }
  };
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of HTTP_METHODS) if (isRecord(item) && isRecord(item[method])) collect(`${method.toUpperCase()} ${path}`, ['paths', path, method]);
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

function mediaTypeMatches(documented: string, actual: string): boolean {
  const [docType = '', ...docParams] = documented.split(';').map((part) => part.trim().toLowerCase());
  const [actualType = '', ...actualParams] = actual.split(';').map((part) => part.trim().toLowerCase());
  return docType === actualType && docParams.every((param) => actualParams.includes(param));
}

/** Asserts status, headers, content type and body match the document; returns the parsed body. */
async function assertConforms(response: Response, operation: Operation): Promise<unknown> {
  const label = operation === 'unmatched' ? 'an unmatched request' : `${operation.method.toUpperCase()} ${operation.path}`;
  const base = operation === 'unmatched' ? ['x-unmatched-requests', 'responses', String(response.status)] : ['paths', operation.path, operation.method, 'responses', String(response.status)];
  const text = await response.text();
  const documented = deref(locate(base).value);
  assert.ok(isRecord(documented), `${label} documents status ${response.status} (body: ${text})`);

  for (const [name, header] of Object.entries(isRecord(documented.headers) ? documented.headers : {})) {
    const resolved = deref(header);
    const actual = response.headers.get(name);
    if (isRecord(resolved) && resolved.required === true) assert.ok(actual !== null, `${label} ${response.status} sends the documented header ${name}`);
    if (actual === null) continue;
    const validate = schemaAt([...base, 'headers', name, 'schema']);
    const schema = isRecord(resolved) && isRecord(resolved.schema) ? resolved.schema : {};
    const value = (schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(actual) ? Number(actual) : actual;
    assert.ok(validate(value), `${label} ${response.status} header ${name}: ${JSON.stringify(actual)} ${ajv.errorsText(validate.errors)}`);
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
// The apps: the embedded node, and apps built with doubles for what the embedded catalog cannot show.

let node: TestNode;
before(async () => {
  node = await startTestNode({ random: () => 0 });
});
after(() => node.close());

/** The same kinds of dependencies service.ts builds for the embedded node, with some replaced. */
async function withApp<T>(overrides: Partial<AppDeps>, use: (baseUrl: string) => Promise<T>): Promise<T> {
  const { config } = node;
  const app = createApp({
    catalog: new MemoryCatalogStore(demoDataset(Date.now())),
    cdns: cdnsFromConfig(config.cdns),
    policy: config.playback,
    now: Date.now,
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
const GOOD_BODY = { contentId: 'tt-demo-0001', device: 'web' };

function post(baseUrl: string, body: unknown, token: string): Promise<Response> {
  return fetch(`${baseUrl}/v1/playback-urls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

/** A client token like the demo auth service's, with chosen claims, key or algorithm. */
function forge(claims: Json, options: { key?: string; algorithm?: jwt.Algorithm } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, sub: 'demo-user', iat: now, exp: now + 600, ...claims }, options.key ?? node.demo.clientKeys.privatePem, {
    algorithm: options.algorithm ?? 'RS256',
    ...(options.algorithm?.startsWith('HS') ? {} : { keyid: 'demo-rs256' }),
  });
}

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
  { code: 'TOKEN_EXPIRED', why: 'the token expired an hour ago', operation: PLAY, send: () => node.play(GOOD_BODY, forge({ iat: now() - 7200, exp: now() - 3600 })) },
  { code: 'TOKEN_NOT_YET_VALID', why: 'the token is valid from an hour hence', operation: PLAY, send: () => node.play(GOOD_BODY, forge({ nbf: now() + 3600, exp: now() + 7200 })) },
  { code: 'TOKEN_CLAIMS_INVALID', why: 'the token is for another audience', operation: PLAY, send: () => node.play(GOOD_BODY, forge({ aud: 'another-service' })) },
  { code: 'NOT_PURCHASED', why: 'the viewer bought nothing', operation: PLAY, send: () => node.play(GOOD_BODY, node.tokenFor('nobody')) },
  { code: 'RENTAL_EXPIRED', why: 'the rental is over', operation: PLAY, send: () => node.play({ contentId: 'tt-demo-0004', device: 'web' }, node.tokenFor('demo-user')) },
  { code: 'SUBSCRIPTION_EXPIRED', why: 'the plan has lapsed', operation: PLAY, send: () => node.play(GOOD_BODY, node.tokenFor('lapsed-user')) },
  { code: 'DEVICE_NOT_ALLOWED', why: 'a phone-only plan plays on a TV', operation: PLAY, send: () => node.play({ contentId: 'tt-demo-0002', device: 'tv' }, node.tokenFor('mobile-user')) },
  {
    code: 'QUALITY_NOT_AVAILABLE',
    why: 'no rendition is under the requested ceiling',
    operation: PLAY,
    send: () => node.play({ contentId: 'tt-demo-0001', device: 'web', quality: '360p' }, node.tokenFor('sd-buyer')),
  },
  { code: 'CONTENT_NOT_FOUND', why: 'the content does not exist', operation: PLAY, send: () => node.play({ contentId: 'tt-nope', device: 'web' }, node.tokenFor('demo-user')) },
  { code: 'NOT_FOUND', why: 'the path does not exist', operation: 'unmatched', send: () => fetch(`${node.baseUrl}/v1/nothing-here`) },
  { code: 'NOT_FOUND', why: 'a health path is POSTed to', operation: 'unmatched', send: () => fetch(`${node.baseUrl}/health/live`, { method: 'POST' }) },
  {
    code: 'METHOD_NOT_ALLOWED',
    why: 'the playback resource is fetched with GET',
    operation: { path: '/v1/playback-urls', method: 'get' },
    send: () => fetch(`${node.baseUrl}/v1/playback-urls`),
  },
  {
    code: 'METHOD_NOT_ALLOWED',
    why: 'the playback resource is asked for OPTIONS',
    operation: { path: '/v1/playback-urls', method: 'options' },
    send: () => fetch(`${node.baseUrl}/v1/playback-urls`, { method: 'OPTIONS' }),
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
    check: (_response, body) => assert.deepEqual((body.errors as { path: string }[]).map((error) => error.path), ['contentId']),
  },
  { code: 'UNKNOWN_DEVICE', why: 'the device class does not exist', operation: PLAY, send: () => node.play({ contentId: 'tt-demo-0001', device: 'fridge' }) },
  { code: 'PROTOCOL_NOT_SUPPORTED', why: 'DASH is asked for on iOS', operation: PLAY, send: () => node.play({ contentId: 'tt-demo-0001', device: 'ios', protocol: 'dash' }) },
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
    send: () => withApp({ catalog: failingCatalog(new Error('SELECT * FROM secrets: boom')) }, (baseUrl) => post(baseUrl, GOOD_BODY, node.tokenFor('demo-user'))),
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
      withApp({ catalog: failingCatalog(new AppError('DEPENDENCY_UNAVAILABLE', { retryAfterSeconds: 5 })) }, (baseUrl) => post(baseUrl, GOOD_BODY, node.tokenFor('demo-user'))),
    check: (response) => assert.equal(response.headers.get('retry-after'), '5'),
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
        for (const requirement of (operation.security ?? []) as Json[]) for (const scheme of Object.keys(requirement)) assert.ok(schemes.includes(scheme), `${method} ${path}: ${scheme}`);
        if (isRecord(operation.requestBody)) schemaAt(['paths', path, method, 'requestBody', 'content', 'application/json', 'schema']);
        for (const status of Object.keys(operation.responses as Json)) {
          const content = locate(['paths', path, method, 'responses', status, 'content']).value;
          for (const mediaType of Object.keys(isRecord(content) ? content : {})) schemaAt(['paths', path, method, 'responses', status, 'content', mediaType, 'schema']);
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
      assert.deepEqual([...(statusesOf.get(code) ?? [])], [PROBLEMS[code].status], `${code} is documented under status ${PROBLEMS[code].status} only`);
    }
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
      return Object.fromEntries(Object.entries(value).filter(([key]) => !['description', 'examples', '$schema'].includes(key)).map(([key, inner]) => [key, strip(inner)]));
    };
    const documented = strip(locate(['components', 'schemas', 'PlaybackRequest']).value);
    assert.deepEqual(documented, strip(z.toJSONSchema(playbackRequestSchema, { io: 'input' })));
  });

  const samples: { body: unknown; valid: boolean; why: string }[] = [
    { body: { contentId: 'tt-demo-0001', device: 'web' }, valid: true, why: 'the two required fields' },
    { body: { contentId: 'A', device: 'tv', quality: 'auto', protocol: 'hls' }, valid: true, why: 'every field' },
    { body: { contentId: `a${'_'.repeat(63)}`, device: `x${'-'.repeat(31)}`, quality: '240p', protocol: 'dash' }, valid: true, why: 'the longest names' },
    { body: { contentId: 'tt-demo-0001', device: 'legacy_stb2', extra: { anything: true } }, valid: true, why: 'unknown members (ignored)' },
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

  it('then /health/live is a plain ok', async () => {
    const response = await fetch(`${node.baseUrl}/health/live`);
    assert.equal(response.status, 200);
    assert.equal(await assertConforms(response, { path: '/health/live', method: 'get' }), 'ok');
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
    const mysqlDown: Probe = { name: 'mysql', essential: true, run: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) };
    const body = await withApp({ probes: [okProbe('node'), mysqlDown, okProbe('keys')] }, async (baseUrl) => {
      const response = await fetch(`${baseUrl}/health/deep`);
      assert.equal(response.status, 503);
      return assertConforms(response, { path: '/health/deep', method: 'get' });
    });
    assert.equal(body, 'fail node=ok(1ms) mysql=error(econnrefused) keys=ok(1ms)');
  });

  it('then /health/deep is 429 with a warn line when only a non-essential probe fails', async () => {
    const redisDown: Probe = { name: 'redis', essential: false, run: () => Promise.resolve({ status: 'warn', text: 'down(reconnecting)' }) };
    const body = await withApp({ probes: [okProbe('node'), okProbe('mysql'), redisDown] }, async (baseUrl) => {
      const response = await fetch(`${baseUrl}/health/deep`);
      assert.equal(response.status, 429);
      return assertConforms(response, { path: '/health/deep', method: 'get' });
    });
    assert.equal(body, 'warn node=ok(1ms) mysql=ok(1ms) redis=down(reconnecting)');
  });

  it('then /metrics is Prometheus text, as documented', async () => {
    const response = await fetch(`${node.baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(String(await assertConforms(response, { path: '/metrics', method: 'get' })), /^# HELP st_api_/m);
  });
});
