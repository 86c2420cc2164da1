// Signer configuration. Key material arrives as plain strings (the config
// loader resolves files/env); it is validated here so a bad key fails at
// startup, and no error message ever contains the material itself.
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { createAkamaiSigner, HEX_KEY } from './akamai.ts';
import { createCloudFrontSigner, loadCloudFrontPrivateKey } from './cloudfront.ts';
import { keyringProblem, type KeyEntry } from './keyring.ts';
import { createNginxSigner, DEFAULT_NGINX_EXPRESSION, validatePlaybackExpression } from './nginx-secure-link.ts';
import type { UrlSigner } from './signer.ts';
import { createWowzaSigner, DEFAULT_WOWZA_PREFIX } from './wowza.ts';

const notAfter = z.union([z.date(), z.iso.datetime({ offset: true }).transform((iso) => new Date(iso))]).optional();

// Key ids appear in health output and logs, so they are plain tokens.
const keyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'key id must be 1-64 characters: letters, digits, ".", "_" or "-"');

export function keysOf<T extends z.ZodType<{ id: string; active: boolean }>>(key: T) {
  return z.array(key).superRefine((keys, ctx) => {
    const problem = keyringProblem(keys);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const cloudfrontKey = z.strictObject({
  id: keyId.regex(/^[A-Za-z0-9]+$/, 'CloudFront key id (Key-Pair-Id) must be alphanumeric'),
  active: z.boolean(),
  notAfter,
  privateKey: z.string().transform((pem, ctx): KeyObject => {
    try {
      return loadCloudFrontPrivateKey(pem);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }),
});

export const secretKey = (secret: z.ZodString) => z.strictObject({ id: keyId, active: z.boolean(), notAfter, secret });

const nonEmptySecret = z.string().min(1, 'secret must not be empty');

export const signerConfigSchema = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('cloudfront'),
      hashAlgorithm: z.enum(['SHA1', 'SHA256']).default('SHA256'),
      bindClientIp: z.boolean().default(false),
      keys: keysOf(cloudfrontKey),
    })
    .superRefine((config, ctx) => {
      config.keys.forEach((key, index) => {
        if (key.privateKey.asymmetricKeyType === 'ec' && config.hashAlgorithm !== 'SHA256') {
          ctx.addIssue({ code: 'custom', path: ['keys', index, 'privateKey'], message: 'ECDSA keys require hashAlgorithm SHA256' });
        }
      });
    }),
  z.strictObject({
    type: z.literal('akamai'),
    tokenName: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'tokenName must be [A-Za-z0-9_-]+')
      .default('__token__'),
    algorithm: z.enum(['sha256', 'sha1', 'md5']).default('sha256'),
    bindClientIp: z.boolean().default(false),
    keys: keysOf(secretKey(z.string().regex(HEX_KEY, 'Akamai key must be a non-empty, even-length hex string'))),
  }),
  z.strictObject({
    type: z.literal('nginx'),
    expression: z
      .string()
      .default(DEFAULT_NGINX_EXPRESSION)
      .superRefine((expression, ctx) => {
        try {
          validatePlaybackExpression(expression);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
        }
      }),
    hashParam: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/)
      .default('md5'),
    expiresParam: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/)
      .default('expires'),
    keys: keysOf(secretKey(nonEmptySecret)),
  }),
  z.strictObject({
    type: z.literal('wowza'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/, 'prefix must be [A-Za-z0-9_]+')
      .default(DEFAULT_WOWZA_PREFIX),
    hashAlgorithm: z.enum(['SHA256', 'SHA384', 'SHA512']).default('SHA256'),
    bindClientIp: z.boolean().default(false),
    keys: keysOf(secretKey(nonEmptySecret)),
  }),
]);

/** After validation: defaults filled, CloudFront keys parsed, dates as Date. */
export type SignerConfig = z.output<typeof signerConfigSchema>;

function entry<M>(key: { id: string; active: boolean; notAfter?: Date | undefined }, material: M): KeyEntry<M> {
  return key.notAfter === undefined
    ? { id: key.id, active: key.active, material }
    : { id: key.id, active: key.active, material, notAfter: key.notAfter };
}

/** Builds the signer from configuration that the application's config schema has already validated. */
export function signerFromConfig(parsed: SignerConfig): UrlSigner {
  switch (parsed.type) {
    case 'cloudfront':
      return createCloudFrontSigner({
        hashAlgorithm: parsed.hashAlgorithm,
        bindClientIp: parsed.bindClientIp,
        keys: parsed.keys.map((key) => entry(key, key.privateKey)),
      });
    case 'akamai':
      return createAkamaiSigner({
        tokenName: parsed.tokenName,
        algorithm: parsed.algorithm,
        bindClientIp: parsed.bindClientIp,
        keys: parsed.keys.map((key) => entry(key, key.secret)),
      });
    case 'nginx':
      return createNginxSigner({
        expression: parsed.expression,
        hashParam: parsed.hashParam,
        expiresParam: parsed.expiresParam,
        keys: parsed.keys.map((key) => entry(key, key.secret)),
      });
    case 'wowza':
      return createWowzaSigner({
        prefix: parsed.prefix,
        hashAlgorithm: parsed.hashAlgorithm,
        bindClientIp: parsed.bindClientIp,
        keys: parsed.keys.map((key) => entry(key, key.secret)),
      });
  }
}
