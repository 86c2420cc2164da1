// The watcher's metrics for node_exporter's textfile collector (a batch job: one file, rewritten at
// the end of every run of `handle`, `reconcile`, and of `exclude`/`include` when they converge).
// ST_DNS_TEXTFILE_DIR names the collector's directory; unset, nothing is written. What DNS holds
// (nodes, floor) is carried over from the previous file when a run fails, as the run status in KV
// is, so a failure shows as a stale last success, not as an empty DNS.
import type { Logger } from 'pino';
import { ProgramError } from '../common/cli/errors.ts';
import { publishTextfile, type PreviousSamples, type Sample, type TextfileMetric } from '../common/textfile-metrics.ts';
import type { ConvergeResult } from './converge.ts';
import type { Health } from './model.ts';

export const WATCHER_TEXTFILE = 'st_dns_watcher';
export const WATCHER_TEXTFILE_DIR_ENV = 'ST_DNS_TEXTFILE_DIR';

/** Commands whose every run (success or failure) is recorded; exclude/include only when they converged. */
const RUN_COMMANDS = new Set(['handle', 'reconcile']);

/** What DNS and Consul looked like at the last converge: carried over by failed runs. */
const STATE_GAUGES: readonly { name: string; help: string }[] = [
  { name: 'st_dns_watcher_nodes_registered', help: 'Nodes with an instance of the service in Consul, at the last successful run' },
  {
    name: 'st_dns_watcher_nodes_healthy',
    help: 'Registered nodes whose instance is healthy (passing, or warning when warningIsHealthy), at the last successful run',
  },
  { name: 'st_dns_watcher_nodes_excluded', help: 'Nodes excluded from DNS by the exclusion list, at the last successful run' },
  { name: 'st_dns_watcher_nodes_eligible', help: 'Healthy, not excluded, publishable nodes, at the last successful run' },
  { name: 'st_dns_watcher_nodes_in_dns', help: 'Nodes with a record in DNS after the last successful run' },
  { name: 'st_dns_watcher_nodes_kept_by_floor', help: 'Nodes kept in DNS only by the floor (minHealthy) after the last successful run' },
  {
    name: 'st_dns_watcher_floor_engaged',
    help: '1 when the last successful run kept records because fewer than minHealthy nodes were eligible',
  },
  { name: 'st_dns_watcher_min_healthy', help: 'The configured floor (minHealthy)' },
  {
    name: 'st_dns_watcher_registrations_skipped',
    help: 'Registrations or addresses left out of DNS as not publishable, at the last successful run',
  },
];

export class WatcherRunRecorder {
  readonly #dir: string | undefined;
  readonly #startedAt: number;
  #converged: ConvergeResult | undefined;
  #minHealthy: number | undefined;
  #warningIsHealthy = true;
  #failure: unknown;

  constructor(env: NodeJS.ProcessEnv, now: () => number = Date.now) {
    this.#dir = env[WATCHER_TEXTFILE_DIR_ENV];
    this.#startedAt = now();
  }

  /** converge's result; `minHealthy`/`warningIsHealthy` from the configuration, for the healthy count and the floor. */
  converged(result: ConvergeResult, policy: { minHealthy: number; warningIsHealthy: boolean }): void {
    this.#converged = result;
    this.#minHealthy = policy.minHealthy;
    this.#warningIsHealthy = policy.warningIsHealthy;
  }

  failed(error: unknown): void {
    this.#failure = error;
  }

  /** At the end of run(): never throws, never changes the exit code. */
  async write(command: string, exitCode: number, logger: Logger, now: () => number = Date.now): Promise<void> {
    if (!RUN_COMMANDS.has(command) && this.#converged === undefined) return;
    const finishedAt = now();
    await publishTextfile(this.#dir, WATCHER_TEXTFILE, logger, (previous) =>
      this.#metrics(previous, exitCode, this.#startedAt / 1000, finishedAt / 1000),
    );
  }

  #metrics(previous: PreviousSamples, exitCode: number, startedAt: number, finishedAt: number): TextfileMetric[] {
    const succeeded = exitCode === 0;
    const lastSuccess = succeeded ? finishedAt : (previous.value('st_dns_watcher_last_success_timestamp_seconds') ?? 0);
    const gauge = (name: string, help: string, value: number): TextfileMetric => ({ name, help, samples: [{ value }] });
    const metrics: TextfileMetric[] = [
      gauge('st_dns_watcher_last_run_timestamp_seconds', 'When the last run (handle, reconcile, exclude, include) ended', finishedAt),
      gauge(
        'st_dns_watcher_last_run_duration_seconds',
        'How long the last run took, lock wait included',
        Math.max(0, finishedAt - startedAt),
      ),
      gauge(
        'st_dns_watcher_last_run_exit_code',
        'Exit code of the last run: 0 ok, 69 unavailable, 75 transient, 78 configuration, 70 bug',
        exitCode,
      ),
      gauge(
        'st_dns_watcher_last_success_timestamp_seconds',
        'When a run last ended with exit 0 (0: never on this host since the file was created)',
        lastSuccess,
      ),
    ];
    if (!succeeded && this.#failure !== undefined) {
      metrics.push({
        name: 'st_dns_watcher_last_run_error_info',
        help: 'The failed last run: the kind of failure (unavailable, transient, config…) and the error name (ConsulUnavailableError, Throttling…)',
        samples: [{ labels: errorLabels(this.#failure), value: 1 }],
      });
    }
    const converged = this.#converged;
    const changes = converged?.status.changes ?? { create: 0, upsert: 0, delete: 0, deferredDeletes: 0 };
    metrics.push(
      {
        name: 'st_dns_watcher_changes_applied',
        help: 'Route53 record changes applied by the last run, by action',
        samples: (['create', 'upsert', 'delete'] as const).map((action) => ({ labels: { action }, value: changes[action] })),
      },
      gauge('st_dns_watcher_deletes_deferred', 'Deletions the last run left to the next one (maxDeletesPerRun)', changes.deferredDeletes),
      gauge(
        'st_dns_watcher_route53_requests',
        'Route53 API requests the last run made (retries inside the SDK not counted)',
        converged?.status.route53Calls ?? 0,
      ),
    );
    const state = converged === undefined ? undefined : this.#state(converged);
    for (const { name, help } of STATE_GAUGES) {
      const value = state === undefined ? previous.value(name) : state[name];
      if (value !== undefined) metrics.push(gauge(name, help, value));
    }
    return metrics;
  }

  #state({ plan, snapshot, status }: ConvergeResult): Record<string, number> {
    const healthy = (health: Health) => health === 'passing' || (health === 'warning' && this.#warningIsHealthy);
    const registered = new Set(snapshot.instances.map((instance) => instance.node));
    const healthyNodes = new Set(snapshot.instances.filter((instance) => healthy(instance.health)).map((instance) => instance.node));
    return {
      st_dns_watcher_nodes_registered: registered.size,
      st_dns_watcher_nodes_healthy: healthyNodes.size,
      st_dns_watcher_nodes_excluded: status.excluded.length,
      st_dns_watcher_nodes_eligible: plan.eligible.length,
      st_dns_watcher_nodes_in_dns: plan.published.length,
      st_dns_watcher_nodes_kept_by_floor: plan.keptByFloor.length,
      st_dns_watcher_floor_engaged: plan.floorEngaged ? 1 : 0,
      st_dns_watcher_min_healthy: this.#minHealthy ?? 0,
      st_dns_watcher_registrations_skipped: plan.skipped.length,
    };
  }
}

/** A bounded pair of labels: the kind the exit code came from and the error's class or SDK name. */
export function errorLabels(error: unknown): Sample['labels'] & { kind: string; error: string } {
  const kind = error instanceof ProgramError ? error.kind : 'bug';
  const name = error instanceof Error ? error.name : 'unknown';
  return { kind, error: /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(name) ? name : 'unknown' };
}
