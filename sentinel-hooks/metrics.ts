// The hooks' metrics for node_exporter's textfile collector. ST_SENTINEL_HOOKS_TEXTFILE_DIR names its
// directory (Sentinel passes its environment to the scripts it runs; the reconcile timer's unit sets
// it too); unset, nothing is written. Two files, because two kinds of run write them at the same
// time: `st_sentinel_hooks.prom` after every reconcile and client-reconfig (the same re-registration,
// taking turns on the host's lock), `st_sentinel_hooks_events.prom` after every notification.
// Label `redis` (ip:port), never `instance`, which Prometheus sets to the scraped node_exporter.
import type { Logger } from 'pino';
import { ProgramError } from '../common/cli/errors.ts';
import { publishTextfile, type PreviousSamples, type TextfileMetric } from '../common/textfile-metrics.ts';
import type { CheckStatus } from './decide.ts';
import type { ApplyResult, Truth } from './sync.ts';

export const HOOKS_TEXTFILE = 'st_sentinel_hooks';
export const HOOKS_EVENTS_TEXTFILE = 'st_sentinel_hooks_events';
export const HOOKS_TEXTFILE_DIR_ENV = 'ST_SENTINEL_HOOKS_TEXTFILE_DIR';

const RECONCILING = new Set(['reconcile', 'client-reconfig']);
const CHECK_STATUS: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

export class HooksRunRecorder {
  readonly #dir: string | undefined;
  readonly #startedAt: number;
  #applied: { truth: Truth; result: ApplyResult } | undefined;
  #event: string | undefined;
  #failure: unknown;

  constructor(env: NodeJS.ProcessEnv, now: () => number = Date.now) {
    this.#dir = env[HOOKS_TEXTFILE_DIR_ENV];
    this.#startedAt = now();
  }

  /** What reconcile or client-reconfig read and registered (before finish() judges the run). */
  applied(truth: Truth, result: ApplyResult): void {
    this.#applied = { truth, result };
  }

  /** A notification's event type (`+switch-master`, `+sdown`…), already checked against Sentinel's syntax. */
  event(type: string): void {
    this.#event = type;
  }

  failed(error: unknown): void {
    this.#failure = error;
  }

  /** At the end of run(): never throws, never changes the exit code. */
  async write(command: string, exitCode: number, logger: Logger, now: () => number = Date.now): Promise<void> {
    const finishedAt = now() / 1000;
    if (RECONCILING.has(command)) {
      await publishTextfile(this.#dir, HOOKS_TEXTFILE, logger, (previous) => this.#runMetrics(previous, exitCode, finishedAt));
    } else if (command === 'notification' && this.#event !== undefined) {
      const type = this.#event;
      await publishTextfile(this.#dir, HOOKS_EVENTS_TEXTFILE, logger, (previous) => eventMetrics(previous, type, finishedAt));
    }
  }

  #runMetrics(previous: PreviousSamples, exitCode: number, finishedAt: number): TextfileMetric[] {
    const gauge = (name: string, help: string, value: number): TextfileMetric => ({ name, help, samples: [{ value }] });
    const metrics: TextfileMetric[] = [
      gauge('st_sentinel_hooks_last_run_timestamp_seconds', 'When the last reconcile or client-reconfig ended', finishedAt),
      gauge(
        'st_sentinel_hooks_last_run_duration_seconds',
        'How long the last reconcile or client-reconfig took, lock wait included',
        Math.max(0, finishedAt - this.#startedAt / 1000),
      ),
      gauge(
        'st_sentinel_hooks_last_run_exit_code',
        'Exit code of the last reconcile or client-reconfig: 0 done, 1 transient, 2 permanent',
        exitCode,
      ),
      gauge(
        'st_sentinel_hooks_last_success_timestamp_seconds',
        'When a reconcile or client-reconfig last ended with exit 0 (0: never since the file was created)',
        exitCode === 0 ? finishedAt : (previous.value('st_sentinel_hooks_last_success_timestamp_seconds') ?? 0),
      ),
    ];
    if (exitCode !== 0 && this.#failure !== undefined) {
      const kind = this.#failure instanceof ProgramError ? this.#failure.kind : 'bug';
      const name =
        this.#failure instanceof Error && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(this.#failure.name) ? this.#failure.name : 'unknown';
      metrics.push({
        name: 'st_sentinel_hooks_last_run_error_info',
        help: 'The failed last run: kind (unavailable, transient, config…) and error name (ConsulUnavailableError, NoMajorityError, LockBusyError…)',
        samples: [{ labels: { kind, error: name }, value: 1 }],
      });
    }
    const applied = this.#applied;
    if (applied === undefined) return metrics;
    const { truth, result } = applied;
    const agreeing = Number(/^(\d+)\//.exec(truth.view.agreement)?.[1] ?? 0);
    const per = (name: string, help: string, value: (outcome: ApplyResult['instances'][number]) => number): TextfileMetric => ({
      name,
      help,
      samples: result.instances.map((outcome) => ({ labels: { redis: outcome.instance }, value: value(outcome) })),
    });
    const mismatched = result.instances.filter((outcome) => outcome.tagBefore !== outcome.decision.tag);
    metrics.push(
      gauge('st_sentinel_hooks_sentinels_configured', 'Sentinels in the configuration', truth.answers.length),
      gauge('st_sentinel_hooks_sentinels_agreeing', 'Sentinels that named the most-named master at the last run', agreeing),
      gauge(
        'st_sentinel_hooks_sentinel_majority',
        '1 when a strict majority of the configured Sentinels agreed on the master',
        truth.view.master === null ? 0 : 1,
      ),
      gauge(
        'st_sentinel_hooks_role_mismatches_found',
        "Local instances whose Consul tag (or missing registration) disagreed with what ROLE and the Sentinels say, at the last run's start",
        mismatched.length,
      ),
      gauge(
        'st_sentinel_hooks_role_mismatches_fixed',
        'Of those, re-registered with the right tag by the last run',
        mismatched.filter((outcome) => outcome.reregistered).length,
      ),
      per('st_sentinel_hooks_redis_reachable', '1 when the instance answered ROLE', (o) => (o.role.kind === 'unreachable' ? 0 : 1)),
      per('st_sentinel_hooks_redis_role_master', '1 when the instance says ROLE=master', (o) => (o.role.kind === 'master' ? 1 : 0)),
      per('st_sentinel_hooks_redis_tagged_master', '1 when the run left the instance tagged master in Consul', (o) =>
        o.decision.tag === 'master' ? 1 : 0,
      ),
      per(
        'st_sentinel_hooks_redis_tag_matches_role',
        '1 when the tag left in Consul says master exactly when ROLE says master (0: a deferred promotion or a deposed master not yet demoted)',
        (o) => ((o.decision.tag === 'master') === (o.role.kind === 'master') ? 1 : 0),
      ),
      per(
        'st_sentinel_hooks_redis_check_status',
        "The role check's status in Consul: 0 passing, 1 warning, 2 critical",
        (o) => CHECK_STATUS[o.decision.status],
      ),
    );
    return metrics;
  }
}

/** Totals carried over from the previous file: each Sentinel calls its own host's script once per event. */
function eventMetrics(previous: PreviousSamples, type: string, at: number): TextfileMetric[] {
  const totals = new Map(previous.all('st_sentinel_hooks_events_total').map((s) => [s.labels?.['event'] ?? '', s.value]));
  totals.set(type, (totals.get(type) ?? 0) + 1);
  const last = new Map(previous.all('st_sentinel_hooks_last_event_timestamp_seconds').map((s) => [s.labels?.['event'] ?? '', s.value]));
  last.set(type, at);
  const samples = (values: Map<string, number>) =>
    [...values].filter(([event]) => event !== '').map(([event, value]) => ({ labels: { event }, value }));
  return [
    {
      name: 'st_sentinel_hooks_events_total',
      help: "Sentinel warning events this host's Sentinel reported (+switch-master: a failover), since the file was created",
      type: 'counter',
      samples: samples(totals),
    },
    {
      name: 'st_sentinel_hooks_last_event_timestamp_seconds',
      help: 'When this host last saw each Sentinel event type',
      samples: samples(last),
    },
  ];
}
