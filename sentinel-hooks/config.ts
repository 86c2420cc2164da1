// One JSON file per host (--config, else $ST_SENTINEL_HOOKS_CONFIG, else
// /etc/st-api/sentinel-hooks.json) plus Consul's own CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN and TLS
// variables (CONSUL_CACERT…), each of which wins over its key in the file.
import { readFileSync } from 'node:fs';
import { readSecretFile, type SecretFileWarning } from '../common/secret-file.ts';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import { errorOfKind } from '../common/cli/errors.ts';
import { consulConnectionFileKeys } from '../common/consul/connection.ts';
import { consulAgentSettings, readConfigFile, type ConsulAgentSettings } from '../common/program-config.ts';
import { MASTER_NAME } from './args.ts';
import type { Credentials, TlsOptions } from './resp.ts';

const endpoint = z
  .object({
    /** An IP, exactly as Sentinel reports it (announce-hostnames no). */
    address: z.string().refine((a) => isIP(a) !== 0, 'must be an IP address'),
    port: z.number().int().min(1).max(65535),
  })
  .strict();

/** Redis ACL credentials; the password stays in its own file (readable by Sentinel's user only), never in this one. */
const auth = z
  .object({
    /** An ACL user (Redis ≥ 6); absent = the default user (requirepass). */
    username: z
      .string()
      .regex(/^[!-~]{1,128}$/, 'printable ASCII without spaces')
      .optional(),
    passwordFile: z.string().startsWith('/'),
  })
  .strict();

const pemFile = z.string().startsWith('/', 'must be an absolute path to a PEM file');

/**
 * TLS to the instances and the Sentinels (both: a Redis with tls-port and port 0 has Sentinels
 * that do the same). The hooks connect to the addresses Sentinel hands out, so `servername` is the
 * name the certificates carry (e.g. redis.service.consul); absent = the address (an IP SAN).
 */
const tls = z
  .object({
    ca: pemFile,
    servername: z
      .string()
      .regex(
        /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/,
        'must be a DNS name',
      )
      .optional(),
    cert: pemFile.optional(),
    key: pemFile.optional(),
  })
  .strict()
  .refine((value) => (value.cert === undefined) === (value.key === undefined), 'give cert and key together (a client certificate)');

export const hooksConfigSchema = z
  .object({
    masterName: z.string().regex(MASTER_NAME, 'letters, digits, . _ - only'),
    /** Every Sentinel watching masterName: a strict majority of THIS list must agree before anything is promoted. */
    sentinels: z.array(endpoint).min(1).max(15),
    /** The Redis instance(s) on this host; only these are (re)registered in the local agent. */
    instances: z.array(endpoint).min(1).max(16),
    service: z
      .string()
      .regex(/^[a-zA-Z0-9-]{1,64}$/)
      .default('redis'),
    /** Who writes, in Meta updated-by and in events (default: the host name). */
    reporter: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    /** TTL of the role check: a reconciler dead for this long turns the instance critical. Keep ≥ 3 × the timer period. */
    checkTtlSeconds: z.number().int().min(3).max(3600).default(15),
    kvPrefix: z
      .string()
      .regex(/^[a-zA-Z0-9/_-]*[a-zA-Z0-9_-]$/)
      .default('redis/sentinel'),
    /** Events kept per master in KV (a ring, newest first). */
    eventsKept: z.number().int().min(1).max(500).default(50),
    /** Serialises hooks and reconcile on this host: must be one path both can write (see README). */
    lockFile: z.string().startsWith('/').default('/run/st-api-sentinel-hooks/lock'),
    /** Hard limit for one run; Sentinel kills a script at 60 s and counts it as a retry. */
    deadlineMs: z.number().int().min(1000).max(50_000).default(40_000),
    redisTimeoutMs: z.number().int().min(50).max(10_000).default(1000),
    consulTimeoutMs: z.number().int().min(100).max(10_000).default(2000),
    lockWaitMs: z.number().int().min(0).max(30_000).default(10_000),
    /** client-reconfig: how long to wait for a Sentinel majority on the new master (observers lag the leader by ~70 ms). */
    convergeWaitMs: z.number().int().min(0).max(30_000).default(5000),
    /** client-reconfig, before tagging master: how long to wait for another instance's master tag to leave DNS (reconcile looks once). */
    promotionWaitMs: z.number().int().min(0).max(40_000).default(20_000),
    /** For ROLE on the instances (needs +role) and for the Sentinels (needs +sentinel|get-master-addr-by-name). */
    redisAuth: auth.optional(),
    sentinelAuth: auth.optional(),
    /** The agent's address and TLS (CA, client certificate, server name): common/consul/connection.ts. */
    ...consulConnectionFileKeys,
    /** TLS to the Redis instances and the Sentinels; absent = plain TCP. */
    tls: tls.optional(),
  })
  .strict();

export type HooksConfig = Omit<z.infer<typeof hooksConfigSchema>, 'redisAuth' | 'sentinelAuth' | 'consulAddress' | 'tls'> &
  ConsulAgentSettings & {
    redisAuth: Credentials | undefined;
    sentinelAuth: Credentials | undefined;
    /** The files read; absent = plain TCP to Redis and the Sentinels. */
    tls: TlsOptions | undefined;
    /** Said once per run (a key or password file others may read); never a reason to stop. */
    warnings: SecretFileWarning[];
    reporter: string;
    file: string;
  };

export class HooksConfigError extends errorOfKind('HooksConfigError', 'config') {}

export const DEFAULT_CONFIG_PATH = '/etc/st-api/sentinel-hooks.json';

export function loadHooksConfig(path: string | undefined, env: NodeJS.ProcessEnv): HooksConfig {
  const file = path ?? env.ST_SENTINEL_HOOKS_CONFIG ?? DEFAULT_CONFIG_PATH;
  const fail = (message: string): Error => new HooksConfigError(message);
  const config = readConfigFile(file, hooksConfigSchema, fail);
  const keys = config.instances.map((i) => `${i.address}:${i.port}`);
  if (new Set(keys).size !== keys.length)
    throw new HooksConfigError(`invalid configuration in ${file}: instances lists the same address twice`);
  const warnings: SecretFileWarning[] = [];
  return {
    ...config,
    redisAuth: credentials(config.redisAuth, 'redisAuth', file, warnings),
    sentinelAuth: credentials(config.sentinelAuth, 'sentinelAuth', file, warnings),
    tls: tlsFiles(config.tls, file, warnings),
    warnings,
    reporter: config.reporter ?? hostname(),
    ...consulAgentSettings(env, config, file, fail),
    file,
  };
}

function credentials(
  auth: { username?: string | undefined; passwordFile: string } | undefined,
  key: string,
  file: string,
  warnings: SecretFileWarning[],
): Credentials | undefined {
  if (auth === undefined) return undefined;
  let password: string;
  try {
    password = readSecretFile(auth.passwordFile, (warning) => warnings.push(warning)).replace(/\r?\n$/, '');
  } catch (error) {
    throw new HooksConfigError(
      `invalid configuration in ${file}: ${key}.passwordFile ${auth.passwordFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (password === '') throw new HooksConfigError(`invalid configuration in ${file}: ${key}.passwordFile ${auth.passwordFile} is empty`);
  return { username: auth.username, password };
}

function readPem(path: string, key: string, file: string, onWarning?: (warning: SecretFileWarning) => void): string {
  try {
    return onWarning === undefined ? readFileSync(path, 'utf8') : readSecretFile(path, onWarning);
  } catch (error) {
    throw new HooksConfigError(
      `invalid configuration in ${file}: tls.${key} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

function tlsFiles(
  value: { ca: string; servername?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined,
  file: string,
  warnings: SecretFileWarning[],
): TlsOptions | undefined {
  if (value === undefined) return undefined;
  const key = value.key === undefined ? undefined : readPem(value.key, 'key', file, (warning) => warnings.push(warning));
  return {
    ca: readPem(value.ca, 'ca', file),
    servername: value.servername,
    cert: value.cert === undefined ? undefined : readPem(value.cert, 'cert', file),
    key,
  };
}
