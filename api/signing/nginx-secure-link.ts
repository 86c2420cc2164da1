// nginx ngx_http_secure_link_module: `secure_link` + `secure_link_md5`
// (base64url MD5 with expiry) and the legacy `secure_link_secret` form.
//
// One hash covers a scope (the manifest's directory), so the same token authorizes the manifest
// and every playlist and segment below it. It travels in the path by default
// (`/t/<hash>/<expires>/vod/…`, every relative URI a player resolves inherits it) or in the query
// (`?md5=…&expires=…`, for manifests st-api tokenizes). The edge configuration that verifies both
// is shipped in deploy/edge/nginx/ and is what test/player/ runs; it cuts the scope out of the
// path with a regex location, exactly as `$scope` is rendered here.
//
// `$secret` in our template stands for the literal secret in the edge's secure_link_md5. A secret
// can only be rotated by editing that config (one expression per location), so key rotation here
// means a short window of redeploying both.
import { createHash } from 'node:crypto';
import { createKeyring, type KeyEntry } from './keyring.ts';
import { epochSeconds, queryTokenSigner, requireClientIp, validateSignRequest } from './request.ts';
import type { SignRequest, TokenPairs, UrlSigner } from './signer.ts';

export const NGINX_VARIABLES = ['secure_link_expires', 'uri', 'scope', 'remote_addr', 'secret'] as const;
export type NginxVariable = (typeof NGINX_VARIABLES)[number];

const VARIABLE = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;

function isNginxVariable(name: string): name is NginxVariable {
  return (NGINX_VARIABLES as readonly string[]).includes(name);
}

/** Variable names used by a template; throws on names we cannot supply. */
export function templateVariables(template: string): Set<NginxVariable> {
  const used = new Set<NginxVariable>();
  for (const match of template.matchAll(VARIABLE)) {
    const name = match[1] ?? match[2] ?? '';
    if (!isNginxVariable(name)) {
      throw new Error(
        `secure_link_md5 template uses unsupported variable $${name}; supported: ${NGINX_VARIABLES.map((v) => `$${v}`).join(', ')}`,
      );
    }
    used.add(name);
  }
  return used;
}

/** Substitutes `$name`/`${name}` the way nginx expands the secure_link_md5 expression. */
export function renderSecureLinkExpression(template: string, values: Partial<Record<NginxVariable, string>>): string {
  templateVariables(template);
  return template.replace(VARIABLE, (_match, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare ?? '') as NginxVariable;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for $${name} in secure_link_md5 template`);
    return value;
  });
}

/** Binary MD5, base64url without padding, as `secure_link` expects in its hash argument. */
export function secureLinkMd5(expression: string): string {
  return createHash('md5').update(expression, 'utf8').digest('base64url');
}

/** Legacy `secure_link_secret`: lowercase hex MD5 of link + secret. */
export function secureLinkSecretHash(link: string, secret: string): string {
  return createHash('md5')
    .update(link + secret, 'utf8')
    .digest('hex');
}

/**
 * Legacy form `/prefix/<hash>/link` for a `location /prefix/ { secure_link_secret … }`.
 * It has no expiry and covers one link, so it is not offered as a playback signer.
 */
export function secureLinkSecretPath(locationPrefix: string, link: string, secret: string): string {
  if (!locationPrefix.startsWith('/') || !locationPrefix.endsWith('/')) {
    throw new Error('locationPrefix must start and end with "/"');
  }
  return `${locationPrefix}${secureLinkSecretHash(link, secret)}/${link}`;
}

export interface NginxSignerOptions {
  /** secure_link_md5 expression with `$secret` for the secret; must contain `$secure_link_expires`, `$scope` and `$secret`. */
  expression: string;
  /** Query parameter names in `secure_link $arg_<hash>,$arg_<expires>`. */
  hashParam: string;
  expiresParam: string;
  keys: ReadonlyArray<KeyEntry<string>>;
}

export const DEFAULT_NGINX_EXPRESSION = '$secure_link_expires$scope $secret';
/** First path segment of a path token; deploy/edge/nginx/ matches `^/t/<hash>/<expires>/`. */
export const PATH_TOKEN_SEGMENT = 't';
const PARAM = /^[A-Za-z0-9_]+$/;

export function validatePlaybackExpression(expression: string): Set<NginxVariable> {
  const used = templateVariables(expression);
  for (const required of ['secure_link_expires', 'scope', 'secret'] as const) {
    if (!used.has(required)) throw new Error(`secure_link_md5 expression must contain $${required}`);
  }
  // One token has to cover the manifest and every segment; $uri would tie it to one file.
  if (used.has('uri')) throw new Error('secure_link_md5 expression for playback must sign $scope, not $uri');
  return used;
}

export function createNginxSigner(options: NginxSignerOptions): UrlSigner {
  const used = validatePlaybackExpression(options.expression);
  if (!PARAM.test(options.hashParam) || !PARAM.test(options.expiresParam) || options.hashParam === options.expiresParam) {
    throw new Error('hashParam and expiresParam must be distinct [A-Za-z0-9_]+ names');
  }
  const keyring = createKeyring(options.keys);
  const { active } = keyring;
  const token = (request: SignRequest): { hash: string; expires: string } => {
    validateSignRequest(request);
    // nginx treats a link as expired only once `expires < now`, i.e. it stays
    // valid through its whole expiry second; step back one so it never outlives expiresAt.
    const expires = String(epochSeconds(request.expiresAt) - 1);
    const expression = renderSecureLinkExpression(options.expression, {
      secure_link_expires: expires,
      scope: request.scopePath,
      secret: active.material,
      ...(used.has('remote_addr') && { remote_addr: requireClientIp(request, 'nginx') }),
    });
    return { hash: secureLinkMd5(expression), expires };
  };
  const queryToken = (request: SignRequest): TokenPairs => {
    const { hash, expires } = token(request);
    return [
      [options.hashParam, hash],
      [options.expiresParam, expires],
    ];
  };
  return {
    ...queryTokenSigner('nginx', keyring.activeInfo, queryToken),
    pathToken(request) {
      const { hash, expires } = token(request);
      return `/${PATH_TOKEN_SEGMENT}/${hash}/${expires}`;
    },
  };
}
