// The watcher's Consul client, for the source (health) and the registry (KV, sessions) alike: the
// shared client with the watcher's reading of failures, every one of them `unavailable` (69).
import { ConsulClient, EVERY_ANSWER_UNAVAILABLE } from '../common/consul/client.ts';
import type { ConsulTlsSettings } from '../common/consul/connection.ts';

export interface ConsulClientSettings {
  /** `host:port` or `http(s)://host:port`, as CONSUL_HTTP_ADDR. */
  address: string;
  tls?: ConsulTlsSettings | undefined;
  token: string | undefined;
  timeoutMs: number;
}

export function consulClient(settings: ConsulClientSettings): ConsulClient {
  return new ConsulClient({ ...settings, failureKinds: EVERY_ANSWER_UNAVAILABLE });
}
