// The `consul` package's client as the watcher sets it up, for the source (health) and the registry
// (KV, sessions) alike: the agent found the way the consul CLI finds it, the token, a per-request timeout.
import Consul from 'consul';

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
