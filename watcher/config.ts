// The watcher's configuration: a JSON file (--config, else ST_DNS_CONFIG, else
// /etc/st-api/dns-watcher.json) plus Consul's own environment variables. Defaults < file; for the
// agent's address and TLS, file < CONSUL_* variable (a watch handler inherits no CONSUL_* variable:
// the agent's drop-in sets none, so there the file decides).
import { z } from 'zod';
import { errorOfKind } from '../common/cli/errors.ts';
import { consulConnectionFileKeys } from '../common/consul/connection.ts';
import { consulAgentSettings, readConfigFile, type ConsulAgentSettings } from '../common/program-config.ts';
import { readSecretFile } from '../common/secret-file.ts';

export const watcherConfigSchema = z
  .object({
    /** The Consul service whose instances are published. */
    service: z
      .string()
      .regex(/^[a-zA-Z0-9-]{1,64}$/)
      .default('st-api'),
    /** The public name, e.g. play.example.com; every node gets a multivalue record under it. */
    recordName: z.string().regex(/^(?=.{1,253}\.?$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}\.?$/i, 'must be a DNS name'),
    zoneId: z.string().regex(/^(\/hostedzone\/)?[A-Z0-9]{1,32}$/, 'must be a Route53 hosted zone id'),
    /** Short: clients re-resolve quickly after a node leaves. */
    ttl: z.number().int().min(1).max(3600).default(30),
    /** SetIdentifier prefix that marks a record as the watcher's; records without it are never touched. */
    ownerId: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .default('st-api'),
    minHealthy: z.number().int().min(0).max(1000).default(2),
    maxDeletesPerRun: z.number().int().min(1).max(10_000).default(10),
    warningIsHealthy: z.boolean().default(true),
    /** Test rigs and single-host demos only: publish loopback addresses (127.0.0.0/8, ::1), which clients elsewhere cannot reach. */
    publishLoopback: z.boolean().default(false),
    /**
     * File holding the watcher's Consul ACL token; wins over CONSUL_HTTP_TOKEN(_FILE). The watch
     * handler inherits the Consul agent's environment, and a token there would be every watch's
     * token on that agent (see deploy/systemd/consul.service.d/st-dns-watcher.conf), so the token
     * comes through the watcher's own configuration instead.
     */
    consulTokenFile: z.string().regex(/^\//, 'must be an absolute path').optional(),
    /** The agent's address and TLS (CA, client certificate, server name): common/consul/connection.ts. */
    ...consulConnectionFileKeys,
    kvPrefix: z
      .string()
      .regex(/^[a-zA-Z0-9/_-]+[^/]$/)
      .default('st-api/dns'),
    /**
     * How long a run waits for another watcher's lock. 30 s outwaits a holder killed mid-run: its
     * session (TTL 10 s, unrenewed once it is dead) is invalidated within 2 × TTL, then lock-delay
     * (1 s), so the lock is free after at most 21 s. Consul runs a watch's handlers one at a time,
     * so a waiting handler delays the next firing, which then carries the newest state.
     */
    lockWaitMs: z.number().int().min(0).max(120_000).default(30_000),
    consulTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    /** Attempts per Route53 call, retries on Throttling/PriorRequestNotComplete/5xx included. */
    route53MaxAttempts: z.number().int().min(1).max(10).default(6),
    /** How often a rejected batch is re-planned against fresh state before giving up. */
    replanAttempts: z.number().int().min(1).max(10).default(3),
  })
  .strict();

export type WatcherConfig = Omit<z.infer<typeof watcherConfigSchema>, 'consulAddress'> & ConsulAgentSettings;

export class WatcherConfigError extends errorOfKind('WatcherConfigError', 'config') {}

export function loadWatcherConfig(path: string | undefined, env: NodeJS.ProcessEnv): WatcherConfig {
  const file = path ?? env.ST_DNS_CONFIG ?? '/etc/st-api/dns-watcher.json';
  const fail = (message: string): Error => new WatcherConfigError(message);
  const config = readConfigFile(file, watcherConfigSchema, fail);
  // Consul's own variables, so the watcher finds the agent the way the consul CLI does.
  const agent = consulAgentSettings(env, config, file, fail);
  const consulWarnings = [...agent.consulWarnings];
  return {
    ...config,
    zoneId: config.zoneId.replace(/^\/hostedzone\//, ''),
    ...agent,
    consulToken:
      config.consulTokenFile === undefined
        ? agent.consulToken
        : readToken(config.consulTokenFile, file, (message) => consulWarnings.push(message)),
    consulWarnings,
  };
}

function readToken(tokenFile: string, configFile: string, onWarning: (message: string) => void): string {
  let token: string;
  try {
    token = readSecretFile(tokenFile, (warning) => onWarning(warning.message)).trim();
  } catch (error) {
    throw new WatcherConfigError(
      `cannot read consulTokenFile ${tokenFile} named in ${configFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (token === '') throw new WatcherConfigError(`consulTokenFile ${tokenFile} named in ${configFile} is empty`);
  return token;
}
