// What converge needs from the source: the service's instances as Consul reports them, with the
// index of that answer. ConsulHealthSource is the real one; tests use an in-memory one.
import type { Instance } from '../model.ts';

export interface Snapshot {
  instances: Instance[];
  /** The Consul index the snapshot reflects (CONSUL_INDEX for a watch, X-Consul-Index for a query). */
  index: number;
  source: 'watch' | 'consul';
}

export interface HealthSource {
  /** What Consul says about the service now. */
  read(): Promise<Snapshot>;
}
