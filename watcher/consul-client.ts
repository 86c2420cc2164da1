// The `consul` package's client as the watcher sets it up, for the source (health) and the registry
// (KV, sessions) alike: the agent found the way the consul CLI finds it, the token, a per-request timeout.
import Consul from 'consul';
import { isConnectionFailure, translated } from '../common/cli/errors.ts';

export interface ConsulClientSettings {
  /** `host:port` or `http://host:port`, as CONSUL_HTTP_ADDR. */
  address: string;
  token: string | undefined;
  timeoutMs: number;
}

export function consulClient(settings: ConsulClientSettings): Consul {
  const url = new URL(settings.address.includes('://') ? settings.address : `http://${settings.address}`);
  // `timeout` (per request, ms) is a documented client option the bundled typings omit.
  const options: ConstructorParameters<typeof Consul>[0] & { timeout: number } = {
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 8500)),
    secure: url.protocol === 'https:',
    timeout: settings.timeoutMs,
    ...(settings.token === undefined ? {} : { defaults: { token: settings.token } }),
  };
  return new Consul(options);
}

/**
 * The client's failures as the run's: no answer (refused, reset, timed out) is `unavailable`, and so
 * is any error answer the client (papi) reports, 403 and 5xx included — what the watcher has always
 * exited with for Consul. The rest (a bug of ours, a malformed request) stays as it is.
 */
export function consulFailure(error: unknown): never {
  if ((error as { isPapi?: unknown } | null)?.isPapi === true || isConnectionFailure(error)) throw translated('unavailable', error);
  throw error;
}
