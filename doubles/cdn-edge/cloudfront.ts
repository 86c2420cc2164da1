// A CloudFront signed-URL / signed-cookie verifier, written from AWS's documentation and NOT from
// st-api's signer (importing api/ would make the player tests check the signer against itself).
//
// Sources (read for this file):
// - Canned policy URLs: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-creating-signed-url-canned-policy.html
// - Custom policy URLs (one statement; Resource wildcards `*` and `?`; DateLessThan required;
//   DateGreaterThan and IpAddress optional; IPv4 CIDR only; Resource excludes Policy, Signature,
//   Key-Pair-Id): https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-creating-signed-url-custom-policy.html
//   (source: github.com/awsdocs/amazon-cloudfront-developer-guide doc_source/private-content-creating-signed-url-custom-policy.md)
// - Signed cookies (CloudFront-Policy|CloudFront-Expires, CloudFront-Signature, CloudFront-Key-Pair-Id,
//   optional CloudFront-Hash-Algorithm; names case-sensitive):
//   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-setting-signed-cookie-custom-policy.html
//   https://docs.amazonaws.cn/en_us/AmazonCloudFront/latest/DeveloperGuide/private-content-setting-signed-cookie-custom-policy.md
// - Signature = RSA-2048 or ECDSA-256 over the policy with SHA-1 (default) or SHA-256, base64 with
//   + → -, = → _, / → ~; `Hash-Algorithm=SHA256` / `CloudFront-Hash-Algorithm=SHA256`:
//   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-linux-openssl.html
//   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/PrivateCFSignatureCodeAndExamples.html
// - The five signing parameters (Expires, Policy, Signature, Key-Pair-Id, Hash-Algorithm):
//   https://docs.aws.amazon.com/cli/latest/reference/cloudfront/sign.md
// - Signed URL wins over signed cookies when a request carries both: "Use signed cookies",
//   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-signed-cookies.html
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  cookieValue,
  normaliseIp,
  queryValues,
  splitRawUrl,
  toEpochMs,
  wildcardMatch,
  withoutQueryParams,
  type Carrier,
  type ViewerRequest,
} from './request-parts.ts';

/** A trusted public key: PEM (SPKI or PKCS#1; a private PEM also works), DER SPKI bytes, or a KeyObject. */
export type CloudFrontPublicKey = string | Buffer | KeyObject;

export const CLOUDFRONT_QUERY_PARAMS: ReadonlySet<string> = new Set(['Expires', 'Policy', 'Signature', 'Key-Pair-Id', 'Hash-Algorithm']);
export const CLOUDFRONT_COOKIES: ReadonlySet<string> = new Set([
  'CloudFront-Expires',
  'CloudFront-Policy',
  'CloudFront-Signature',
  'CloudFront-Key-Pair-Id',
  'CloudFront-Hash-Algorithm',
]);

export type CloudFrontDenyCode =
  'missing-credentials' | 'malformed' | 'unknown-key' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'resource-mismatch' | 'ip-mismatch';

export type CloudFrontVerdict =
  | {
      readonly allowed: true;
      readonly carrier: 'query' | 'cookie';
      readonly policy: 'canned' | 'custom';
      readonly keyPairId: string;
      /** The URL the policy was matched against (the viewer's URL without the signing parameters). */
      readonly resourceUrl: string;
    }
  | { readonly allowed: false; readonly code: CloudFrontDenyCode; readonly reason: string };

export interface CloudFrontVerifierOptions {
  /** Trusted public keys by Key-Pair-Id (the key group of the cache behaviour). */
  readonly publicKeys: Readonly<Record<string, CloudFrontPublicKey>>;
  /** Where to look; CloudFront itself always behaves as 'either'. Default 'either'. */
  readonly carrier?: Carrier;
}

export type CloudFrontVerifier = (request: ViewerRequest, now: number | Date) => CloudFrontVerdict;

interface SignedParts {
  readonly carrier: 'query' | 'cookie';
  readonly expires: string | undefined;
  readonly policy: string | undefined;
  readonly signature: string | undefined;
  readonly keyPairId: string | undefined;
  readonly hashAlgorithm: string | undefined;
}

function deny(code: CloudFrontDenyCode, reason: string): CloudFrontVerdict {
  return { allowed: false, code, reason };
}

/** Keys are parsed once, so a bad key is a configuration error at start, not a 403 later. */
export function createCloudFrontVerifier(options: CloudFrontVerifierOptions): CloudFrontVerifier {
  const keys = new Map<string, KeyObject>();
  for (const [id, key] of Object.entries(options.publicKeys)) {
    const keyObject = toPublicKey(key);
    const type = keyObject.asymmetricKeyType;
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    if (type !== 'rsa' && !(type === 'ec' && curve === 'prime256v1')) {
      // CloudFront's public-key API accepts RSA 2048 and ECDSA 256 only (API_PublicKey).
      throw new Error(
        `cloudfront edge: key ${id} is ${type ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`}; CloudFront takes RSA or ECDSA P-256`,
      );
    }
    keys.set(id, keyObject);
  }
  if (keys.size === 0) throw new Error('cloudfront edge: no trusted public keys');
  const carrier = options.carrier ?? 'either';
  return (request, now) => verifyWithKeys(request, toEpochMs(now), keys, carrier);
}

function toPublicKey(key: CloudFrontPublicKey): KeyObject {
  if (typeof key === 'string') return createPublicKey(key);
  if (Buffer.isBuffer(key)) return createPublicKey({ key, format: 'der', type: 'spki' });
  return key.type === 'public' ? key : createPublicKey(key);
}

/** The viewer's URL without CloudFront's own parameters: what a Resource is matched against. */
export function cloudFrontResourceUrl(url: string): string {
  return withoutQueryParams(url, CLOUDFRONT_QUERY_PARAMS);
}

/** CloudFront's base64 variant back to bytes; undefined when it is not that alphabet. */
export function decodeCloudFrontBase64(value: string): Buffer | undefined {
  if (!/^[A-Za-z0-9~-]+_{0,2}$/.test(value)) return undefined;
  const standard = value.replaceAll('-', '+').replaceAll('_', '=').replaceAll('~', '/');
  if (standard.length % 4 !== 0) return undefined;
  return Buffer.from(standard, 'base64');
}

function verifyWithKeys(request: ViewerRequest, nowMs: number, keys: ReadonlyMap<string, KeyObject>, carrier: Carrier): CloudFrontVerdict {
  const url = splitRawUrl(request.url);
  if (url.origin === '') return deny('malformed', 'the request URL has no scheme://host, which a Resource needs');
  const resourceUrl = cloudFrontResourceUrl(request.url);

  const fromQuery = carrier !== 'cookie' ? signedPartsFromQuery(url) : undefined;
  if (fromQuery !== undefined && 'error' in fromQuery) return deny('malformed', fromQuery.error);
  const fromCookies = carrier !== 'query' ? signedPartsFromCookies(request) : undefined;
  // A signed URL decides alone when it is present, even if valid cookies came along.
  const signed = fromQuery ?? fromCookies;
  if (signed === undefined) {
    const where =
      carrier === 'query'
        ? 'signed URL parameters'
        : carrier === 'cookie'
          ? 'CloudFront-* cookies'
          : 'signed URL parameters or CloudFront-* cookies';
    return deny('missing-credentials', `no ${where}`);
  }
  const names =
    signed.carrier === 'query'
      ? { expires: 'Expires', policy: 'Policy', signature: 'Signature', keyPairId: 'Key-Pair-Id', hash: 'Hash-Algorithm' }
      : {
          expires: 'CloudFront-Expires',
          policy: 'CloudFront-Policy',
          signature: 'CloudFront-Signature',
          keyPairId: 'CloudFront-Key-Pair-Id',
          hash: 'CloudFront-Hash-Algorithm',
        };

  if (signed.keyPairId === undefined || signed.keyPairId === '') return deny('malformed', `${names.keyPairId} is missing`);
  if (signed.signature === undefined || signed.signature === '') return deny('malformed', `${names.signature} is missing`);
  if (signed.expires !== undefined && signed.policy !== undefined)
    return deny(
      'malformed',
      `both ${names.expires} and ${names.policy}: a canned policy has no ${names.policy}, a custom one no ${names.expires}`,
    );
  if (signed.expires === undefined && signed.policy === undefined)
    return deny('malformed', `neither ${names.expires} (canned) nor ${names.policy} (custom)`);

  let digest: 'sha1' | 'sha256';
  if (signed.hashAlgorithm === undefined || signed.hashAlgorithm === 'SHA1') digest = 'sha1';
  else if (signed.hashAlgorithm === 'SHA256') digest = 'sha256';
  else return deny('malformed', `${names.hash} must be SHA1 or SHA256, not ${JSON.stringify(signed.hashAlgorithm)}`);

  const key = keys.get(signed.keyPairId);
  if (key === undefined) return deny('unknown-key', `${names.keyPairId} ${JSON.stringify(signed.keyPairId)} is not a trusted key`);

  const signature = decodeCloudFrontBase64(signed.signature);
  if (signature === undefined) return deny('malformed', `${names.signature} is not CloudFront base64 (A-Z a-z 0-9 - ~, padding _)`);

  let policyJson: string;
  let kind: 'canned' | 'custom';
  if (signed.expires !== undefined) {
    if (!/^[0-9]{1,12}$/.test(signed.expires)) return deny('malformed', `${names.expires} must be epoch seconds`);
    // CloudFront rebuilds the canned policy itself, so these exact bytes are what was signed.
    policyJson = JSON.stringify({
      Statement: [{ Resource: resourceUrl, Condition: { DateLessThan: { 'AWS:EpochTime': Number(signed.expires) } } }],
    });
    kind = 'canned';
  } else {
    const policyBytes = decodeCloudFrontBase64(signed.policy ?? '');
    if (policyBytes === undefined) return deny('malformed', `${names.policy} is not CloudFront base64`);
    policyJson = policyBytes.toString('utf8');
    kind = 'custom';
  }

  // The signature is checked before the policy is believed: an unsigned policy says nothing.
  let valid: boolean;
  try {
    valid = verify(digest, Buffer.from(policyJson, 'utf8'), key, signature);
  } catch {
    valid = false; // e.g. an ECDSA signature that is not DER
  }
  if (!valid) {
    return deny(
      'bad-signature',
      `${names.signature} does not verify with key ${signed.keyPairId} (${digest.toUpperCase()}, ${kind} policy${kind === 'canned' ? ` rebuilt for ${resourceUrl}` : ''})`,
    );
  }

  const policy = parsePolicy(policyJson);
  if ('error' in policy) return deny('malformed', `malformed policy: ${policy.error}`);

  if (!(nowMs < policy.dateLessThan * 1000)) {
    return deny(
      'expired',
      `expired: DateLessThan ${policy.dateLessThan} (${new Date(policy.dateLessThan * 1000).toISOString()}) is not after now (${new Date(nowMs).toISOString()})`,
    );
  }
  if (policy.dateGreaterThan !== undefined && !(nowMs > policy.dateGreaterThan * 1000)) {
    return deny(
      'not-yet-valid',
      `not yet valid: DateGreaterThan ${policy.dateGreaterThan} (${new Date(policy.dateGreaterThan * 1000).toISOString()}) is not before now (${new Date(nowMs).toISOString()})`,
    );
  }
  // The documents: "If you omit the Resource parameter … users can access all of the objects".
  if (policy.resource !== undefined && !wildcardMatch(policy.resource, resourceUrl)) {
    return deny('resource-mismatch', `resource mismatch: ${resourceUrl} is not matched by Resource ${policy.resource}`);
  }
  if (policy.sourceIp !== undefined) {
    const ip = request.clientIp === undefined ? undefined : normaliseIp(request.clientIp);
    if (ip === undefined || !ipv4InCidr(ip, policy.sourceIp)) {
      return deny('ip-mismatch', `client ${ip ?? '(unknown)'} is not in AWS:SourceIp ${policy.sourceIp.text}`);
    }
  }
  return { allowed: true, carrier: signed.carrier, policy: kind, keyPairId: signed.keyPairId, resourceUrl };
}

function signedPartsFromQuery(url: ReturnType<typeof splitRawUrl>): SignedParts | { error: string } | undefined {
  const values = new Map<string, string>();
  for (const name of CLOUDFRONT_QUERY_PARAMS) {
    const found = queryValues(url, name);
    if (found.length > 1) return { error: `${name} appears ${found.length} times` };
    const first = found[0];
    if (first === undefined) continue;
    // The values use CloudFront's URL-safe alphabet and are sent unescaped. A player that rebuilds
    // the query (URLSearchParams turns ~ into %7E) would still mean the same bytes, and any HTTP
    // server decodes query values, so %XX is decoded here; AWS does not document either way.
    let decoded: string;
    try {
      decoded = decodeURIComponent(first);
    } catch {
      return { error: `${name} has a broken %-escape` };
    }
    values.set(name, decoded);
  }
  if (values.size === 0) return undefined;
  return {
    carrier: 'query',
    expires: values.get('Expires'),
    policy: values.get('Policy'),
    signature: values.get('Signature'),
    keyPairId: values.get('Key-Pair-Id'),
    hashAlgorithm: values.get('Hash-Algorithm'),
  };
}

function signedPartsFromCookies(request: ViewerRequest): SignedParts | undefined {
  const parts: SignedParts = {
    carrier: 'cookie',
    expires: cookieValue(request.cookies, 'CloudFront-Expires'),
    policy: cookieValue(request.cookies, 'CloudFront-Policy'),
    signature: cookieValue(request.cookies, 'CloudFront-Signature'),
    keyPairId: cookieValue(request.cookies, 'CloudFront-Key-Pair-Id'),
    hashAlgorithm: cookieValue(request.cookies, 'CloudFront-Hash-Algorithm'),
  };
  const any = [parts.expires, parts.policy, parts.signature, parts.keyPairId, parts.hashAlgorithm].some((value) => value !== undefined);
  return any ? parts : undefined;
}

interface Cidr {
  readonly text: string;
  readonly network: number;
  readonly bits: number;
}

interface ParsedPolicy {
  readonly resource: string | undefined;
  readonly dateLessThan: number;
  readonly dateGreaterThan: number | undefined;
  readonly sourceIp: Cidr | undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function epochOf(value: unknown, name: string): number | { error: string } {
  if (!isPlainObject(value) || Object.keys(value).length !== 1 || !Object.hasOwn(value, 'AWS:EpochTime')) {
    return { error: `${name} must be {"AWS:EpochTime": <seconds>}` };
  }
  const seconds = value['AWS:EpochTime'];
  // The documents: "Do not enclose the value in quotation marks."
  if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 0)
    return { error: `${name} AWS:EpochTime must be a whole number of seconds` };
  return seconds;
}

function parsePolicy(json: string): ParsedPolicy | { error: string } {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch {
    return { error: 'not JSON' };
  }
  if (!isPlainObject(document) || !Array.isArray(document['Statement'])) return { error: 'no Statement array' };
  const statements: unknown[] = document['Statement'];
  if (statements.length !== 1) return { error: `exactly one statement is allowed, found ${statements.length}` };
  const statement = statements[0];
  if (!isPlainObject(statement)) return { error: 'the statement is not an object' };
  for (const key of Object.keys(statement)) {
    if (key !== 'Resource' && key !== 'Condition') return { error: `unknown statement field ${key}` };
  }
  const resource = statement['Resource'];
  if (resource !== undefined && typeof resource !== 'string') return { error: 'Resource must be one string' };
  const condition = statement['Condition'];
  if (!isPlainObject(condition)) return { error: 'Condition is missing' };
  for (const key of Object.keys(condition)) {
    if (key !== 'DateLessThan' && key !== 'DateGreaterThan' && key !== 'IpAddress') return { error: `unknown condition ${key}` };
  }
  if (condition['DateLessThan'] === undefined) return { error: 'DateLessThan is required' };
  const dateLessThan = epochOf(condition['DateLessThan'], 'DateLessThan');
  if (typeof dateLessThan !== 'number') return dateLessThan;
  let dateGreaterThan: number | undefined;
  if (condition['DateGreaterThan'] !== undefined) {
    const parsed = epochOf(condition['DateGreaterThan'], 'DateGreaterThan');
    if (typeof parsed !== 'number') return parsed;
    dateGreaterThan = parsed;
  }
  let sourceIp: Cidr | undefined;
  const ipCondition = condition['IpAddress'];
  if (ipCondition !== undefined) {
    if (!isPlainObject(ipCondition) || Object.keys(ipCondition).length !== 1 || typeof ipCondition['AWS:SourceIp'] !== 'string') {
      return { error: 'IpAddress must be {"AWS:SourceIp": "<IPv4 CIDR>"}' };
    }
    const cidr = parseIpv4Cidr(ipCondition['AWS:SourceIp']);
    if (cidr === undefined)
      return {
        error: `AWS:SourceIp ${JSON.stringify(ipCondition['AWS:SourceIp'])} is not an IPv4 CIDR (IPv6 is not supported by CloudFront)`,
      };
    sourceIp = cidr;
  }
  return { resource, dateLessThan, dateGreaterThan, sourceIp };
}

function parseIpv4(text: string): number | undefined {
  const octets = text.split('.');
  if (octets.length !== 4) return undefined;
  let value = 0;
  for (const octet of octets) {
    if (!/^[0-9]{1,3}$/.test(octet) || Number(octet) > 255) return undefined;
    value = value * 256 + Number(octet);
  }
  return value;
}

function parseIpv4Cidr(text: string): Cidr | undefined {
  // The documents ask for standard CIDR ("IPv4 IP address/32" for one address).
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text);
  if (match === null) return undefined;
  const address = parseIpv4(match[1] ?? '');
  const bits = Number(match[2]);
  if (address === undefined || bits > 32) return undefined;
  return { text, network: address, bits };
}

function ipv4InCidr(ip: string, cidr: Cidr): boolean {
  const address = parseIpv4(ip);
  if (address === undefined) return false;
  if (cidr.bits === 0) return true;
  const size = 2 ** (32 - cidr.bits);
  return Math.floor(address / size) === Math.floor(cidr.network / size);
}
