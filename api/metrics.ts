// Prometheus metrics, named <program>_<subsystem>_<name>_<unit>. One registry per app instance
// (no module-level singletons), so tests can run several apps in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Dependency = 'mysql' | 'redis';

export class Metrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'st_api_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly urlsIssued = new Counter({
    name: 'st_api_playback_urls_issued_total',
    help: 'Signed playback URLs issued',
    labelNames: ['cdn', 'protocol', 'quality'] as const,
    registers: [this.registry],
  });

  readonly denials = new Counter({
    name: 'st_api_playback_denials_total',
    help: 'Play requests refused, by problem code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly dependencyDuration = new Histogram({
    name: 'st_api_dependency_duration_seconds',
    help: 'Latency of calls to MySQL and Redis',
    labelNames: ['dependency', 'operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly dependencyErrors = new Counter({
    name: 'st_api_dependency_errors_total',
    help: 'Failed or timed-out calls to MySQL and Redis',
    labelNames: ['dependency', 'operation'] as const,
    registers: [this.registry],
  });

  readonly cacheLookups = new Counter({
    name: 'st_api_cache_lookups_total',
    help: 'Cache lookups by kind and result (hit, miss, error); hit ratio = hit / sum',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  readonly manifestRequests = new Counter({
    name: 'st_api_manifest_requests_total',
    help: 'Tokenized manifests served (served, stale) or refused (token-invalid, token-expired, not-found, origin-unavailable, origin-invalid), by CDN',
    labelNames: ['cdn', 'result'] as const,
    registers: [this.registry],
  });

  readonly manifestCache = new Counter({
    name: 'st_api_manifest_cache_lookups_total',
    help: 'Origin manifest cache lookups: hit (fresh copy), miss (fetched from the origin), stale (origin down, older copy served)',
    labelNames: ['cdn', 'result'] as const,
    registers: [this.registry],
  });

  readonly manifestOriginDuration = new Histogram({
    name: 'st_api_manifest_origin_fetch_duration_seconds',
    help: "Fetches of the origin's manifests by result (ok, not-found, unavailable, invalid)",
    labelNames: ['cdn', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** Always 1; the labels say what runs (the node_exporter/Prometheus `*_build_info` convention). */
  readonly buildInfo = new Gauge({
    name: 'st_api_build_info',
    help: 'What this node runs: package version, commit, Node version (value always 1)',
    labelNames: ['version', 'commit', 'node'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'st_api_' });
  }

  /** Times one dependency call and counts its failure; the error still propagates. */
  async observe<T>(dependency: Dependency, operation: string, call: () => Promise<T>): Promise<T> {
    const stop = this.dependencyDuration.startTimer({ dependency, operation });
    try {
      return await call();
    } catch (error) {
      this.dependencyErrors.inc({ dependency, operation });
      throw error;
    } finally {
      stop();
    }
  }
}
