// Prometheus metrics, named <program>_<subsystem>_<name>_<unit>. One registry per app instance
// (no module-level singletons), so tests can run several apps in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HealthReport, HealthState, ProbeStatus } from './health/deep-health.ts';
import type { SigningKeyInfo } from './signing/signer.ts';

export type Dependency = 'mysql' | 'redis';

const HEALTH_VALUE: Record<HealthState, number> = { passing: 0, warning: 1, critical: 2 };
const PROBE_VALUE: Record<ProbeStatus, number> = { ok: 0, warn: 1, fail: 2 };

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

  /** Set at start: keys are configuration, and a rotation is a new configuration (hence a restart). */
  readonly signingKeyExpiry = new Gauge({
    name: 'st_api_signing_key_expiry_timestamp_seconds',
    help: "When each CDN's active signing key expires (notAfter); keys without notAfter have no series",
    labelNames: ['cdn', 'key'] as const,
    registers: [this.registry],
  });

  readonly signingKeyExpiryWarning = new Gauge({
    name: 'st_api_signing_key_expiry_warning_seconds',
    help: '/health/deep warns when an active key expires within this many seconds (health.keyExpiryWarningDays)',
    registers: [this.registry],
  });

  /**
   * Set each time /health/deep runs (Consul checks it every few seconds), so it says what Consul saw.
   * Registered at the first check: before it, 0 would read as passing.
   */
  readonly healthStatus = new Gauge({
    name: 'st_api_health_status',
    help: 'The last /health/deep answer: 0 passing, 1 warning, 2 critical',
    registers: [],
  });

  readonly healthProbeStatus = new Gauge({
    name: 'st_api_health_probe_status',
    help: 'Each /health/deep probe at its last run: 0 ok, 1 warn, 2 fail',
    labelNames: ['probe'] as const,
    registers: [this.registry],
  });

  readonly healthCheckedAt = new Gauge({
    name: 'st_api_health_last_check_timestamp_seconds',
    help: 'When /health/deep last ran, else when the node started (a stale value: nothing, Consul included, checks this node)',
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
    this.healthCheckedAt.set(Date.now() / 1000);
  }

  recordSigningKeys(keys: readonly { cdn: string; key: SigningKeyInfo }[], warningDays: number): void {
    this.signingKeyExpiryWarning.set(warningDays * 24 * 3600);
    for (const { cdn, key } of keys) {
      if (key.notAfter !== undefined) this.signingKeyExpiry.set({ cdn, key: key.id }, key.notAfter.getTime() / 1000);
    }
  }

  recordHealth(report: HealthReport, at: number): void {
    if (this.registry.getSingleMetric('st_api_health_status') === undefined) this.registry.registerMetric(this.healthStatus);
    this.healthStatus.set(HEALTH_VALUE[report.state]);
    for (const probe of report.probes) this.healthProbeStatus.set({ probe: probe.name }, PROBE_VALUE[probe.status]);
    this.healthCheckedAt.set(at / 1000);
  }

  /**
   * The serving certificate's notAfter, read at each scrape (so it follows rotations). Registered only
   * when the node serves HTTPS: a plain-HTTP node must not report an expiry of 0 that an alert would read as expired.
   */
  trackCertificateExpiry(notAfter: () => Date): void {
    new Gauge({
      name: 'st_api_tls_certificate_expiry_timestamp_seconds',
      help: "The serving TLS certificate's notAfter, in unix seconds (alert on it minus time())",
      registers: [this.registry],
      collect() {
        this.set(Math.floor(notAfter().getTime() / 1000));
      },
    });
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
