// Shared test plumbing. The fixtures are byte-identical copies of
// /work/shared/fixtures/signing (published vectors; see fixtures/README.md)
// so the suite does not depend on anything outside the repo.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { signerConfigSchema, signerFromConfig, type SignerConfig } from '../../api/signing/config.ts';
import type { SignRequest, UrlSigner } from '../../api/signing/signer.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
}

export type TestKeys = Record<
  | 'test-rsa-key.pem'
  | 'test-rsa-key-public.pem'
  | 'test-rsa-key-pkcs1.pem'
  | 'test-ecdsa-key.pem'
  | 'test-ecdsa-key-sec1.pem'
  | 'test-ecdsa-key-public.pem',
  string
>;

export const testKeys = fixture<TestKeys>('cloudfront-test-keys.aws-cli.json');

/** Runs a shell pipeline with `input` on stdin; used for independent openssl reconstructions. */
export function sh(script: string, input: string): string {
  return execFileSync('sh', ['-c', script], { input, encoding: 'utf8' }).trim();
}

/** Lowercase hex HMAC from openssl, key given as hex (as Akamai's edge decodes it). */
export function opensslHmacHex(digest: 'sha256' | 'sha1' | 'md5', hexKey: string, message: string): string {
  const out = sh(`openssl dgst -${digest} -mac HMAC -macopt hexkey:${hexKey}`, message);
  const hex = out.split('= ').pop();
  if (hex === undefined || !/^[0-9a-f]+$/.test(hex)) throw new Error(`unexpected openssl output: ${out}`);
  return hex;
}

export function queryOf(url: string): Map<string, string> {
  const query = url.slice(url.indexOf('?') + 1);
  const params = new Map<string, string>();
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    params.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return params;
}

export function param(url: string, name: string): string {
  const value = queryOf(url).get(name);
  if (value === undefined) throw new Error(`no ${name} in ${url}`);
  return value;
}

export const NOT_BEFORE = new Date('2026-01-01T00:00:00Z');
export const EXPIRES_AT = new Date('2026-01-01T04:00:00Z');

export function playbackRequest(overrides: Partial<SignRequest> = {}): SignRequest {
  return {
    origin: 'https://cdn.example.com',
    manifestPath: '/vod/title-42/master.m3u8',
    scopePath: '/vod/title-42/',
    notBefore: NOT_BEFORE,
    expiresAt: EXPIRES_AT,
    ...overrides,
  };
}

/** A signer's configuration as written (key material as strings, defaults optional). */
export type SignerConfigInput = z.input<typeof signerConfigSchema>;

export class SignerConfigError extends Error {
  override name = 'SignerConfigError';
}

// zod issues carry paths and our messages only (input values are not reported
// by default), so this can be logged without leaking secrets.
function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`).join('; ');
}

/** Validates one signer's configuration as st-api's config schema does, with a readable error. */
export function parseSignerConfig(config: unknown): SignerConfig {
  const result = signerConfigSchema.safeParse(config);
  if (!result.success) throw new SignerConfigError(`invalid signer config: ${describeIssues(result.error)}`);
  return result.data;
}

/** Validates raw configuration, then builds the signer. */
export function createSigner(config: SignerConfigInput): UrlSigner {
  return signerFromConfig(parseSignerConfig(config));
}
