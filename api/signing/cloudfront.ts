// Amazon CloudFront signed URLs (canned and custom policy, RSA or ECDSA P-256).
// Vectors: aws-cli shared sign cases and botocore's stubbed-signer cases.
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { createKeyring, type KeyEntry } from './keyring.ts';
import { appendQuery, epochSeconds, queryTokenSigner, requireClientIp, validateSignRequest } from './request.ts';
import type { SignRequest, TokenPairs, UrlSigner } from './signer.ts';

export type CloudFrontHashAlgorithm = 'SHA1' | 'SHA256';

export interface CustomPolicyInput {
  resource: string;
  /** Epoch seconds. */
  dateLessThan: number;
  /** Epoch seconds. */
  dateGreaterThan?: number;
  /** One IPv4 address or CIDR; a bare address becomes `/32`. */
  ipAddress?: string;
}

export interface SignCloudFrontUrlInput {
  /** The exact URL that will be requested, already percent-encoded. */
  url: string;
  keyPairId: string;
  /** PEM (PKCS#1, PKCS#8 or SEC1) or an already parsed key. */
  privateKey: string | KeyObject;
  /** Epoch seconds (DateLessThan). */
  expires: number;
  policy: 'canned' | 'custom';
  hashAlgorithm: CloudFrontHashAlgorithm;
  /** Epoch seconds (DateGreaterThan); custom policy only. */
  notBefore?: number;
  ipAddress?: string;
  /** Policy resource when it differs from `url`, e.g. a `*` wildcard; custom policy only. */
  resource?: string;
}

// The policy is JSON built from these strings. Rejecting rather than escaping
// is what the shared AWS cases prefer, and a URL on the wire never needs `"`,
// `\`, spaces or non-ASCII anyway.
const JSON_SAFE_URL = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;
const KEY_PAIR_ID = /^[A-Za-z0-9]+$/;

function assertResource(resource: string, field: string): void {
  if (!JSON_SAFE_URL.test(resource)) {
    throw new Error(`${field} (policy resource) must be printable ASCII without '"', '\\' or spaces; percent-encode it first`);
  }
}

function assertEpoch(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${field} is required and must be a positive integer of epoch seconds`);
  }
}

export function normalizeIpv4Cidr(ipAddress: string): string {
  const match = IPV4_CIDR.exec(ipAddress);
  const octetsOk = match?.slice(1, 5).every((octet) => Number(octet) <= 255) ?? false;
  const mask = match?.[5];
  if (match === null || !octetsOk || (mask !== undefined && Number(mask) > 32)) {
    throw new Error('ipAddress must be one IPv4 address or CIDR (CloudFront policies do not support IPv6)');
  }
  return mask === undefined ? `${ipAddress}/32` : ipAddress;
}

export function cannedPolicy(resource: string, expiresEpoch: number): string {
  assertResource(resource, 'url');
  assertEpoch(expiresEpoch, 'expires (DateLessThan)');
  return JSON.stringify({
    Statement: [{ Resource: resource, Condition: { DateLessThan: { 'AWS:EpochTime': expiresEpoch } } }],
  });
}

/** Key order Resource, Condition{DateLessThan, IpAddress, DateGreaterThan}, as aws-cli/botocore emit it. */
export function customPolicy(input: CustomPolicyInput): string {
  assertResource(input.resource, 'resource');
  assertEpoch(input.dateLessThan, 'expires (DateLessThan)');
  const condition: Record<string, unknown> = { DateLessThan: { 'AWS:EpochTime': input.dateLessThan } };
  if (input.ipAddress !== undefined) {
    condition['IpAddress'] = { 'AWS:SourceIp': normalizeIpv4Cidr(input.ipAddress) };
  }
  if (input.dateGreaterThan !== undefined) {
    assertEpoch(input.dateGreaterThan, 'notBefore (DateGreaterThan)');
    if (input.dateGreaterThan >= input.dateLessThan) {
      throw new Error('notBefore (active date) must be before the expiration date');
    }
    condition['DateGreaterThan'] = { 'AWS:EpochTime': input.dateGreaterThan };
  }
  return JSON.stringify({ Statement: [{ Resource: input.resource, Condition: condition }] });
}

/** Base64 with CloudFront's own URL-safe substitutions: `+`→`-`, `=`→`_`, `/`→`~`. */
export function cloudfrontBase64(data: Buffer | string): string {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return bytes.toString('base64').replaceAll('+', '-').replaceAll('=', '_').replaceAll('/', '~');
}

/** Parses and checks a signing key; the error never echoes the PEM. */
export function loadCloudFrontPrivateKey(pem: string | KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = typeof pem === 'string' ? createPrivateKey(pem) : pem;
  } catch {
    throw new Error('private key is not a parseable PEM private key (PKCS#1, PKCS#8 or SEC1)');
  }
  if (key.type !== 'private') {
    throw new Error('CloudFront signing needs a private key, got a public/secret key');
  }
  const isRsa = key.asymmetricKeyType === 'rsa';
  const isP256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  if (!isRsa && !isP256) {
    throw new Error(`unsupported key type ${String(key.asymmetricKeyType)}: CloudFront signing keys must be RSA or ECDSA P-256`);
  }
  return key;
}

function isEcdsaKey(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec';
}

export function signCloudFrontUrl(input: SignCloudFrontUrlInput): string {
  const key = loadCloudFrontPrivateKey(input.privateKey);
  if (isEcdsaKey(key) && input.hashAlgorithm !== 'SHA256') {
    throw new Error('ECDSA keys require hashAlgorithm SHA256; SHA1 is only allowed with RSA keys');
  }
  if (!KEY_PAIR_ID.test(input.keyPairId)) {
    throw new Error('keyPairId must be alphanumeric');
  }
  if (input.url.includes('#')) {
    throw new Error('url must not contain a fragment; it is never sent to the edge');
  }
  assertResource(input.url, 'url');

  let policy: string;
  if (input.policy === 'canned') {
    // CloudFront rebuilds a canned policy from the request URL itself, so
    // anything that differs from it could never verify.
    if (input.resource !== undefined || input.notBefore !== undefined || input.ipAddress !== undefined) {
      throw new Error('canned policy signs only url and expires; use the custom policy for resource, notBefore or ipAddress');
    }
    policy = cannedPolicy(input.url, input.expires);
  } else {
    policy = customPolicy({
      resource: input.resource ?? input.url,
      dateLessThan: input.expires,
      ...(input.notBefore !== undefined && { dateGreaterThan: input.notBefore }),
      ...(input.ipAddress !== undefined && { ipAddress: input.ipAddress }),
    });
  }

  const signature = signPolicy(policy, key, input.hashAlgorithm);
  // Parameter order follows @aws-sdk/cloudfront-signer so URLs are comparable byte for byte.
  const params: Array<[string, string]> = [
    input.policy === 'canned' ? ['Expires', String(input.expires)] : ['Policy', cloudfrontBase64(policy)],
    ['Key-Pair-Id', input.keyPairId],
    ['Signature', signature],
  ];
  if (input.hashAlgorithm === 'SHA256') params.push(['Hash-Algorithm', 'SHA256']);
  return appendQuery(input.url, params);
}

/**
 * Node emits DER for ECDSA, which is what openssl and aws-cli produce and CloudFront accepts;
 * RSA is PKCS#1 v1.5.
 */
function signPolicy(policy: string, key: KeyObject, hashAlgorithm: CloudFrontHashAlgorithm): string {
  return cloudfrontBase64(sign(hashAlgorithm === 'SHA256' ? 'sha256' : 'sha1', Buffer.from(policy, 'utf8'), key));
}

export interface CloudFrontSignerOptions {
  hashAlgorithm: CloudFrontHashAlgorithm;
  /** Put the viewer's IPv4 address into the policy; IPv6 viewers then cannot be served. */
  bindClientIp: boolean;
  /** Key id = the CloudFront public key id (Key-Pair-Id) in the trusted key group; parsed RSA or P-256 private keys. */
  keys: ReadonlyArray<KeyEntry<KeyObject>>;
}

/**
 * One custom-policy token for the whole scope: Resource is `origin + scopePath + '*'`, so the
 * manifest and every segment below it verify with the same query string or the same cookies.
 */
export function createCloudFrontSigner(options: CloudFrontSignerOptions): UrlSigner {
  // Trusts its options: the configuration schema (config.ts) has parsed each key and refused ECDSA with SHA1.
  const keyring = createKeyring(options.keys);
  const { active } = keyring;
  const signedPolicy = (request: SignRequest): { policy: string; signature: string } => {
    validateSignRequest(request);
    const policy = customPolicy({
      resource: `${request.origin}${request.scopePath}*`,
      dateLessThan: epochSeconds(request.expiresAt),
      dateGreaterThan: epochSeconds(request.notBefore),
      ...(options.bindClientIp && { ipAddress: requireClientIp(request, 'cloudfront') }),
    });
    return { policy: cloudfrontBase64(policy), signature: signPolicy(policy, active.material, options.hashAlgorithm) };
  };
  const hashAlgorithm = (name: string): TokenPairs => (options.hashAlgorithm === 'SHA256' ? [[name, 'SHA256']] : []);
  const queryToken = (request: SignRequest): TokenPairs => {
    const { policy, signature } = signedPolicy(request);
    // Parameter order follows @aws-sdk/cloudfront-signer so URLs are comparable byte for byte.
    return [['Policy', policy], ['Key-Pair-Id', active.id], ['Signature', signature], ...hashAlgorithm('Hash-Algorithm')];
  };
  return {
    ...queryTokenSigner('cloudfront', keyring.activeInfo, queryToken),
    cookieToken(request) {
      const { policy, signature } = signedPolicy(request);
      // The names AWS documents for signed cookies with a custom policy; case-sensitive.
      return [
        ['CloudFront-Policy', policy],
        ['CloudFront-Signature', signature],
        ['CloudFront-Key-Pair-Id', active.id],
        ...hashAlgorithm('CloudFront-Hash-Algorithm'),
      ];
    },
  };
}
