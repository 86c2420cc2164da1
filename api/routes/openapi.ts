// GET /openapi.json: the contract (api/openapi.yaml, converted once at start-up), with a `servers`
// entry naming this node as the client reached it, so a generated client or Swagger UI works as is.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type Router } from 'express';
import { parse } from 'yaml';
import type { Logger } from '../logger.ts';

export type OpenApiDocument = Record<string, unknown>;

/** The document is data only and the same for every node of a process: read and parsed once. */
let cached: OpenApiDocument | undefined;

/**
 * api/openapi.yaml beside this module's folder (dist/api/openapi.yaml in the image, copied by the
 * build). A missing or broken document costs the route, never the node: it answers 404 and says why once.
 */
export function loadOpenApiDocument(logger: Logger, file: URL = new URL('../openapi.yaml', import.meta.url)): OpenApiDocument | undefined {
  if (cached !== undefined) return cached;
  try {
    const parsed = parse(readFileSync(file, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a YAML mapping');
    cached = parsed as OpenApiDocument;
    return cached;
  } catch (error) {
    logger.warn(
      { file: file.pathname, why: error instanceof Error ? error.message : String(error) },
      'OpenAPI document unavailable; /openapi.json answers 404',
    );
    return undefined;
  }
}

/** host or host:port, a DNS name or an IP literal: anything else in Host is not put into the document. */
const SANE_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** How long any cache may keep it: a blue/green upgrade shows its new contract within minutes. */
const MAX_AGE_SECONDS = 300;

export function openapiRoutes(document: OpenApiDocument | undefined): Router {
  const router = express.Router();
  if (document === undefined) return router;
  router.get('/openapi.json', (req, res) => {
    // The base URL the client used: the node behind round-robin DNS answers under the public name,
    // on whichever scheme its socket speaks (trust proxy is off: no header can claim https).
    const host = req.headers.host;
    const url = host !== undefined && SANE_HOST.test(host) && host.length <= 260 ? `${req.protocol}://${host}` : '/';
    const body = JSON.stringify({ ...document, servers: [{ url, description: 'this st-api node, as the request reached it' }] });
    res
      .set('Cache-Control', `public, max-age=${MAX_AGE_SECONDS}`)
      .set('Vary', 'Host')
      // A public document with no credentials: any page (Swagger UI elsewhere) may read it.
      .set('Access-Control-Allow-Origin', '*')
      .set('ETag', `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`)
      .type('application/json');
    // Express answers 304 itself when If-None-Match matches the ETag.
    res.send(body);
  });
  return router;
}
