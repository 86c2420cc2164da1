// The one place st-api reads its configuration: a JSON file (ST_API_CONFIG) or, without one, the
// embedded demo. Secrets may be given as {"file": path} or {"env": NAME} anywhere in the file.
// Every bad key is reported at start-up in one message; no value is ever echoed.
import { isIP } from 'node:net';
import { z } from 'zod';
import { readJsonFile } from '../common/program-config.ts';
import { readSecretFile, type SecretFileWarning } from '../common/secret-file.ts';
import { TOKEN_ALGORITHMS, tokenKey } from './auth/client-token.ts';
import { isServerName, readMysqlTls } from './catalog/mysql-tls.ts';
import { LOG_LEVELS } from './logger.ts';
import { DELIVERY_MODES, DELIVERY_MODES_BY_SCHEME, type Delivery } from './delivery/delivery.ts';
import { keysOf, secretKey, signerConfigSchema } from './signing/config.ts';
import { readTlsFile, type RedisTls } from './redis/tls.ts';

const positiveInt = z.number().int().positive();
/** `scheme://host[:port]`, nothing after it: URLs are built by appending a path. */
const httpOrigin = z
  .url({ protocol: /^https?$/ })
  .refine((url) => URL.canParse(url) && new URL(url).origin === url, 'must be scheme://host[:port] with no path or trailing slash');
const millis = (fallback: number) => z.number().int().min(1).max(60_000).default(fallback);
/** A file's path (a secret's {"file": …} would put its content here instead). */
const pemFilePath = z
  .string()
  .min(1)
  .refine((value) => !value.includes('\n') && !value.startsWith('-----'), 'must be the path of a PEM file, not its content');

const mysqlSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(3306),
    user: z.string().min(1),
    password: z.string(),
    database: z.string().regex(/^[A-Za-z0-9_]{1,64}$/),
    poolSize: positiveInt.max(200).default(20),
    connectTimeoutMs: millis(1000),
    queryTimeoutMs: millis(1000),
    /** TLS to the server: PEM files, read at start-up. */
    tls: z
      .object({
        ca: pemFilePath,
        /** The name the server's certificate must carry; default: host. */
        servername: z
          .string()
          .refine(isServerName, 'must be a DNS name, e.g. "mysql.service.consul" (an address is checked as host already)')
          .optional(),
        /** A client certificate and its key, for servers that require one (mutual TLS). */
        cert: pemFilePath.optional(),
        key: pemFilePath.optional(),
      })
      .strict()
      .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), {
        path: ['key'],
        message: 'give both cert and key, or neither',
      })
      .optional(),
  })
  .strict()
  .transform(({ tls, ...mysql }, ctx) => {
    if (tls === undefined) return { ...mysql, tls: undefined };
    const read = readMysqlTls(tls, mysql.host, (field, message) => ctx.addIssue({ code: 'custom', path: ['tls', field], message }));
    return read === undefined ? z.NEVER : { ...mysql, tls: read };
  });

/** `ip` or `ip:port` or `[ipv6]:port`: what dns.Resolver#setServers takes (no hostnames: nothing would resolve them). */
function isDnsServer(value: string): boolean {
  const match =
    /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(value) ?? (isIP(value) === 6 ? [value, value, undefined, undefined] : null);
  if (match === null) return false;
  const host = match[1] ?? match[2] ?? '';
  const port = match[3] === undefined ? 53 : Number(match[3]);
  return isIP(host) !== 0 && port >= 1 && port <= 65535;
}

const redisDiscoverySchema = z
  .object({
    /** e.g. master.redis.service.consul */
    name: z
      .string()
      .regex(
        /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/,
        'must be a DNS name',
      ),
    /** The local Consul agent's DNS port, e.g. 127.0.0.1:8600; absent = the system resolver (a forwarder for .consul). */
    dnsServer: z
      .string()
      .refine(isDnsServer, 'must be an IP address with an optional port, e.g. "127.0.0.1:8600" or "[::1]:8600"')
      .optional(),
    /** Take the port from the name's SRV record instead of `port`. */
    useSrv: z.boolean().default(false),
    port: z.number().int().min(1).max(65535).optional(),
    resolveTimeoutMs: millis(500),
    refreshIntervalMs: z.number().int().min(100).max(600_000).default(5000),
    retryMinMs: millis(100),
    retryMaxMs: millis(2000),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.useSrv && value.port !== undefined)
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'with useSrv the port comes from the SRV record; remove port or useSrv' });
    if (value.retryMinMs > value.retryMaxMs) ctx.addIssue({ code: 'custom', path: ['retryMinMs'], message: 'must not exceed retryMaxMs' });
  })
  .transform(({ useSrv, port, ...rest }) => ({ ...rest, port: useSrv ? ('srv' as const) : (port ?? 6379) }));

const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Redis over TLS: PEM files, read once at start-up (an unreadable one stops the process, named).
 * `servername` is the name the server's certificate must carry; by default the discovery name (the
 * address changes with every failover, the certificate names the service) or the fixed host.
 */
const redisTlsSchema = z
  .object({
    ca: z.string().startsWith('/', 'must be an absolute path to a PEM file'),
    servername: z.string().regex(DNS_NAME, 'must be a DNS name').optional(),
    cert: z.string().startsWith('/', 'must be an absolute path to a PEM file').optional(),
    key: z.string().startsWith('/', 'must be an absolute path to a PEM file').optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    if ((value.cert === undefined) !== (value.key === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [value.cert === undefined ? 'cert' : 'key'],
        message: 'give cert and key together (a client certificate)',
      });
  })
  .transform((value, ctx): RedisTls => {
    let keyWarning: SecretFileWarning | undefined;
    const read = (key: 'ca' | 'cert' | 'key'): string | undefined => {
      const path = value[key];
      if (path === undefined) return undefined;
      const result = readTlsFile(path, key === 'key' ? (warning) => (keyWarning = warning) : undefined);
      if ('text' in result) return result.text;
      ctx.addIssue({ code: 'custom', path: [key], message: result.problem });
      return undefined;
    };
    return {
      ca: read('ca') ?? '',
      servername: value.servername?.replace(/\.$/, ''),
      cert: read('cert'),
      key: read('key'),
      keyWarning,
    };
  });

/**
 * Two forms: a fixed address (`host`, `port`) or a DNS name to find the master by (`discovery`).
 * One schema rather than a union, so that every bad key is named instead of "invalid input".
 */
const redisSchema = z
  .object({
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    discovery: redisDiscoverySchema.optional(),
    password: z.string().optional(),
    db: z.number().int().min(0).max(15).default(0),
    commandTimeoutMs: millis(100),
    connectTimeoutMs: millis(500),
    tls: redisTlsSchema.optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.host === undefined && value.discovery === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['host'],
        message: 'give either host (a fixed address) or discovery (a DNS name for the master)',
      });
    }
    if (value.host !== undefined && value.discovery !== undefined)
      ctx.addIssue({ code: 'custom', path: ['discovery'], message: 'give either host or discovery, not both' });
    if (value.discovery !== undefined && value.port !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: 'with discovery, the port is discovery.port or comes from SRV (discovery.useSrv)',
      });
    }
  })
  .transform(({ host, port, discovery, ...common }) =>
    discovery === undefined ? { ...common, host: host ?? '', port: port ?? 6379, discovery: undefined } : { ...common, discovery },
  );

const absolutePath = z.string().regex(/^\//, 'must be an absolute path');

/** The public port's certificate (api/tls/): PEM files an operator or certbot replaces in place. */
const tlsSchema = z
  .object({
    /** The full chain, leaf first. */
    certFile: absolutePath,
    /** The leaf's private key, unencrypted; read with its permissions checked. */
    keyFile: absolutePath,
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** Reload when the files' directories report a change; false: only on SIGHUP and the periodic check. */
    watch: z.boolean().default(true),
    /** The files are also compared this often, for mounts that send no change events (NFS). */
    pollIntervalMs: z.number().int().min(100).max(3_600_000).default(60_000),
  })
  .strict();

export const configSchema = z
  .object({
    listen: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Absent: plain HTTP (the embedded demo, loopback). Present: HTTPS from these files, reloaded when they change. */
        tls: tlsSchema.optional(),
      })
      .strict()
      .default({ host: '0.0.0.0', port: 8080 }),
    /**
     * A second, plain-HTTP listener for operators: /metrics, /health/live and /health/deep. When set,
     * the public port stops serving /metrics. Meant for loopback or a private interface.
     */
    admin: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    auth: z
      .object({
        issuer: z.string().min(1),
        audience: z.string().min(1),
        leewaySeconds: z.number().int().min(0).max(300).default(60),
        maxTokenBytes: positiveInt.max(65_536).default(8192),
        keys: z
          .array(
            z
              .object({ kid: z.string().min(1).optional(), algorithm: z.enum(TOKEN_ALGORITHMS), key: z.string().min(1) })
              .strict()
              .superRefine((entry, ctx) => {
                if (entry.algorithm.startsWith('HS') && Buffer.byteLength(entry.key) < 32) {
                  ctx.addIssue({ code: 'custom', path: ['key'], message: 'an HMAC secret must be at least 32 bytes' });
                  return;
                }
                try {
                  tokenKey(entry.algorithm, entry.key);
                } catch {
                  ctx.addIssue({ code: 'custom', path: ['key'], message: `not a valid PEM key for ${entry.algorithm}` });
                }
              }),
          )
          .min(1),
      })
      .strict(),
    /** Without `mysql`, the demo catalog is served from memory (the embedded default). */
    mysql: mysqlSchema.optional(),
    /** Without `redis`, every lookup goes to the catalog. */
    redis: redisSchema.optional(),
    cache: z
      .object({
        contentSeconds: positiveInt.max(3600).default(60),
        deviceClassSeconds: positiveInt.max(3600).default(300),
        rightsSeconds: positiveInt.max(300).default(30),
        denialSeconds: positiveInt.max(10).default(2),
      })
      .strict()
      .default({ contentSeconds: 60, deviceClassSeconds: 300, rightsSeconds: 30, denialSeconds: 2 }),
    playback: z
      .object({
        urlTtlSeconds: z
          .number()
          .int()
          .min(60)
          .max(7 * 24 * 3600)
          .default(6 * 3600),
        clockSkewSeconds: z.number().int().min(0).max(3600).default(300),
      })
      .strict()
      .default({ urlTtlSeconds: 6 * 3600, clockSkewSeconds: 300 }),
    cdns: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/),
            origin: z.url({ protocol: /^https?$/ }).refine((url) => !url.endsWith('/'), 'must not end with "/"'),
            weight: z.number().min(0).default(1),
            pathPrefix: z
              .string()
              .regex(/^(\/[A-Za-z0-9._-]+)*$/)
              .default(''),
            signer: signerConfigSchema,
            /** How the token reaches every request the player makes; the default depends on the signer. */
            delivery: z
              .object({
                mode: z.enum(DELIVERY_MODES).optional(),
                cookieDomain: z
                  .string()
                  .regex(
                    /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/,
                    'must be a lowercase domain name with at least two labels, e.g. "example.com"',
                  )
                  .optional(),
                manifestOrigin: httpOrigin.optional(),
              })
              .strict()
              .default({}),
          })
          .strict()
          .superRefine((cdn, ctx) => {
            const supported = DELIVERY_MODES_BY_SCHEME[cdn.signer.type] ?? [];
            if (cdn.delivery.mode !== undefined && !supported.includes(cdn.delivery.mode)) {
              ctx.addIssue({
                code: 'custom',
                path: ['delivery', 'mode'],
                message: `the ${cdn.signer.type} signer supports ${supported.join(', ')}`,
              });
            }
            const host = URL.canParse(cdn.origin) ? new URL(cdn.origin).hostname : '';
            if (
              cdn.delivery.cookieDomain !== undefined &&
              !(host === cdn.delivery.cookieDomain || host.endsWith(`.${cdn.delivery.cookieDomain}`))
            ) {
              ctx.addIssue({
                code: 'custom',
                path: ['delivery', 'cookieDomain'],
                message: `must be the CDN's host or a parent of it (${host})`,
              });
            }
            // The signers can bind a token to the viewer's address, but no play carries one yet (it
            // needs a trusted-proxy setting to be told truly): refuse now rather than fail every play.
            const bindsIp =
              ('bindClientIp' in cdn.signer && cdn.signer.bindClientIp) ||
              (cdn.signer.type === 'nginx' && cdn.signer.expression.includes('remote_addr'));
            if (bindsIp) {
              ctx.addIssue({
                code: 'custom',
                path: ['signer'],
                message:
                  "binding tokens to the viewer's IP (bindClientIp, $remote_addr) is not supported yet: st-api does not carry the client address to the signer",
              });
            }
            if ((cdn.delivery.mode === 'tokenized-manifest') !== (cdn.delivery.manifestOrigin !== undefined)) {
              ctx.addIssue({
                code: 'custom',
                path: ['delivery', 'manifestOrigin'],
                message: 'is required with mode tokenized-manifest, and only then',
              });
            }
          })
          .transform(({ delivery, ...cdn }) => {
            const resolved: Delivery = { mode: delivery.mode ?? DELIVERY_MODES_BY_SCHEME[cdn.signer.type]?.[0] ?? 'query' };
            if (delivery.cookieDomain !== undefined) resolved.cookieDomain = delivery.cookieDomain;
            if (delivery.manifestOrigin !== undefined) resolved.manifestOrigin = delivery.manifestOrigin;
            return { ...cdn, delivery: resolved };
          }),
      )
      .min(1),
    /** st-api's manifest route, for CDNs with tokenized-manifest delivery. */
    manifests: z
      .object({
        /** st-api's public base URL: the manifest URLs it returns start with it. */
        publicUrl: httpOrigin,
        /** HMAC keys of the manifest URLs' path token; several = rotation, as for signers. */
        keys: keysOf(secretKey(z.string().refine((secret) => Buffer.byteLength(secret) >= 32, 'must be at least 32 bytes'))),
        freshSeconds: positiveInt.max(3600).default(60),
        staleSeconds: z.number().int().min(0).max(86_400).default(600),
        fetchTimeoutMs: millis(2000),
        maxBytes: positiveInt.max(16 * 1024 * 1024).default(2 * 1024 * 1024),
        maxEntries: positiveInt.max(1_000_000).default(10_000),
        maxCacheBytes: positiveInt.default(256 * 1024 * 1024),
        /** Manifests with a token in, ready to send (one per manifest and issue slot in use). */
        maxRenderedBytes: positiveInt.default(256 * 1024 * 1024),
      })
      .strict()
      .optional(),
    /** Web apps on these origins may call the API from a browser (and receive cookies in cookie delivery). */
    cors: z
      .object({
        allowedOrigins: z
          .array(
            z
              .string()
              .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be an origin: scheme://host[:port], no path or trailing slash'),
          )
          .max(100)
          .default([]),
      })
      .strict()
      .default({ allowedOrigins: [] }),
    rateLimit: z
      .object({ playsPerMinute: z.number().int().min(0).max(100_000).default(120) })
      .strict()
      .default({ playsPerMinute: 120 }),
    health: z
      .object({
        probeTimeoutMs: millis(500),
        keyExpiryWarningDays: z.number().int().min(0).max(365).default(14),
        eventLoopLagWarningMs: positiveInt.default(200),
      })
      .strict()
      .default({ probeTimeoutMs: 500, keyExpiryWarningDays: 14, eventLoopLagWarningMs: 200 }),
    /**
     * Connection limits (api/http-server.ts). A play request is a few headers and a body under 4 KB:
     * a client that takes seconds to send them is broken or hostile. Keep-alive spares a client a
     * new connection for a request soon after its last (a retry, the next title) without holding
     * idle connections for long. A request timeout within shutdown.timeoutMs lets a drain end
     * before the forced exit.
     */
    http: z
      .object({
        headersTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
        requestTimeoutMs: z.number().int().min(100).max(300_000).default(15_000),
        /** Node announces it in whole seconds (Keep-Alive: timeout=N) and closes one second later. */
        keepAliveTimeoutMs: z.number().int().min(1000).max(120_000).default(5000),
        maxConnections: positiveInt.max(1_000_000).default(10_000),
      })
      .strict()
      .superRefine((value, ctx) => {
        // Node refuses a headers timeout longer than the request timeout.
        if (value.headersTimeoutMs > value.requestTimeoutMs)
          ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: 'must not exceed requestTimeoutMs' });
      })
      .default({ headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, keepAliveTimeoutMs: 5000, maxConnections: 10_000 }),
    shutdown: z
      .object({ drainMs: z.number().int().min(0).max(60_000).default(3000), timeoutMs: millis(15_000) })
      .strict()
      .default({ drainMs: 3000, timeoutMs: 15_000 }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** Cross-section rules, reported with the field errors. */
function crossChecks(config: Config): string[] {
  const tokenized = config.cdns.filter((cdn) => cdn.delivery.mode === 'tokenized-manifest').map((cdn) => cdn.name);
  return tokenized.length > 0 && config.manifests === undefined
    ? [`manifests: required because ${tokenized.join(', ')} use${tokenized.length === 1 ? 's' : ''} tokenized-manifest delivery`]
    : [];
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Validates a raw configuration object (secret references already allowed in it). A secret file
 * that others can read is reported through `onWarning`: the logger does not exist yet.
 */
export function parseConfig(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  onWarning: (warning: SecretFileWarning) => void = () => undefined,
): Config {
  const problems: string[] = [];
  const resolved = resolveSecrets(raw, { env, onWarning }, [], problems);
  const result = configSchema.safeParse(resolved);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (result.success) problems.push(...crossChecks(result.data));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  // The TLS keys are read inside the schema, which cannot reach onWarning: their warnings ride along.
  for (const warning of [result.data.mysql?.tls?.keyWarning, result.data.redis?.tls?.keyWarning])
    if (warning !== undefined) onWarning(warning);
  return result.data;
}

export function readConfigFile(
  path: string,
  env: NodeJS.ProcessEnv,
  onWarning: (warning: SecretFileWarning) => void = () => undefined,
): Config {
  return parseConfig(
    readJsonFile(path, (message) => new ConfigError([`ST_API_CONFIG: ${message}`])),
    env,
    onWarning,
  );
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

interface SecretSources {
  readonly env: NodeJS.ProcessEnv;
  /** A `{"file"}` secret that others can read (common/secret-file.ts). */
  readonly onWarning: (warning: SecretFileWarning) => void;
}

/** `{"file": "/run/secrets/x"}` and `{"env": "NAME"}` are replaced by the secret they point to. */
function resolveSecrets(value: unknown, sources: SecretSources, path: (string | number)[], problems: string[]): unknown {
  if (Array.isArray(value)) return value.map((item, index) => resolveSecrets(item, sources, [...path, index], problems));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  const where = path.join('.');
  if (entries.length === 1 && entries[0]?.[0] === 'file' && typeof entries[0][1] === 'string') {
    try {
      return readSecretFile(entries[0][1], sources.onWarning).trimEnd();
    } catch (error) {
      // The file's name is not a secret, and on-call needs it.
      problems.push(`${where}: cannot read the secret file ${entries[0][1]} (${errorCode(error)})`);
      return '';
    }
  }
  if (entries.length === 1 && entries[0]?.[0] === 'env' && typeof entries[0][1] === 'string') {
    const secret = sources.env[entries[0][1]];
    if (secret === undefined || secret === '') problems.push(`${where}: environment variable ${entries[0][1]} is not set`);
    return secret ?? '';
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, resolveSecrets(item, sources, [...path, key], problems)]));
}
