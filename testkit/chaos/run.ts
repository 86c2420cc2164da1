// One chaos run: start the system, put play load on it through DNS, inject a seeded sequence of
// faults one at a time (inject, hold, heal, wait until the system is whole again) while the
// invariants are sampled, then print faults × outcomes. Everything it starts is stopped.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, registerPid, sleep, unregisterPid } from '../processes.ts';
import { FAULTS, type FaultContext, type Injected } from './faults.ts';
import { InvariantMonitor, startSampling, takeSample, type Bounds, type Violation } from './invariants.ts';
import { startLoad, type PlayOutcome, type PlayRecord } from './load.ts';
import { mulberry32 } from './prng.ts';
import { CHAOS_TITLES, CHAOS_VIEWERS, chaosViewer, startChaosSystem, DEFAULT_TIMINGS, type ChaosSystem } from './system.ts';

export const EXIT_CODES = { OK: 0, INVARIANT_BROKEN: 1, USAGE: 2, HARNESS: 3, INTERRUPTED: 130 } as const;

export interface ChaosOptions {
  readonly seed: number;
  /** How long faults are injected; the last one is still healed and awaited after it. */
  readonly durationMs: number;
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface FaultRecord {
  readonly kind: string;
  readonly target: string;
  readonly injectedAt: number;
  healedAt: number | null;
  recoveredAt: number | null;
  /** Inject → the node out of DNS, for faults that must take one out. */
  outOfDnsAfterMs: number | null;
  readonly nodeOut: string | undefined;
  readonly mysqlDown: boolean;
  error: string | null;
}

export interface ChaosReport {
  readonly exitCode: number;
  readonly seed: number;
  readonly faults: readonly FaultRecord[];
  readonly plays: Readonly<Record<PlayOutcome, number>>;
  readonly violations: readonly Violation[];
  readonly table: string;
}

const RECOVERY_TIMEOUT_MS = 60_000;
/** After MySQL comes back, pools reconnect and the cache refills: documented 503s may trail the heal. */
const MYSQL_GRACE_MS = 5000;
const WATCHER_RUN_BOUND_MS = 10_000;
const MARGIN_MS = 5000;

function bounds(system: ChaosSystem): Bounds {
  const { checkIntervalMs, reconcilePeriodMs } = system.timings;
  // Measured from the moment Consul shows the check critical, so the probes before it do not count.
  return {
    criticalToOutMs: checkIntervalMs + WATCHER_RUN_BOUND_MS + MARGIN_MS,
    excludedToOutMs: reconcilePeriodMs + WATCHER_RUN_BOUND_MS + MARGIN_MS,
    failoverWindowMs: 30_000,
    statusStaleMs: reconcilePeriodMs + WATCHER_RUN_BOUND_MS + MARGIN_MS,
  };
}

/** The fault in force at `at`: from its injection until the system was whole again (plus a grace after MySQL faults). */
export function faultAt(faults: readonly FaultRecord[], at: number): FaultRecord | undefined {
  return faults.find(
    (f) => at >= f.injectedAt && at <= (f.recoveredAt ?? f.healedAt ?? Number.POSITIVE_INFINITY) + (f.mysqlDown ? MYSQL_GRACE_MS : 0),
  );
}

/** A MySQL fault in force at any moment of [from, to]: a play that started just before MariaDB stopped waits on it. */
function mysqlFaultDuring(faults: readonly FaultRecord[], from: number, to: number): FaultRecord | undefined {
  return faults.find(
    (f) => f.mysqlDown && to >= f.injectedAt && from <= (f.recoveredAt ?? f.healedAt ?? Number.POSITIVE_INFINITY) + MYSQL_GRACE_MS,
  );
}

/**
 * No play fails; the documented 503 only while a MySQL fault is in force during the play. Plays are
 * counted under the fault in force when they started.
 */
export function judgePlays(plays: readonly PlayRecord[], faults: readonly FaultRecord[]): Violation[] {
  const violations: Violation[] = [];
  for (const p of plays) {
    const fault = mysqlFaultDuring(faults, p.startedAt, p.finishedAt) ?? faultAt(faults, p.startedAt);
    if (p.outcome === 'failed')
      violations.push({ at: p.startedAt, invariant: 'no play fails', detail: `${p.cause} (${p.attempts} attempt(s))` });
    if (p.outcome === 'documented-503' && fault?.mysqlDown !== true)
      violations.push({
        at: p.startedAt,
        invariant: '503 only while MySQL is gone',
        detail: `${p.cause} during ${fault?.kind ?? 'no fault'}`,
      });
  }
  return violations;
}

/** st-dns-reconcile.timer, shortened: `watcher reconcile` as a process every period, one at a time. */
export function startReconcileTimer(
  system: ChaosSystem,
  deadline: number,
  log: (line: string) => void,
): { running(): boolean; exits: Map<string, number>; stop(): Promise<void> } {
  const exits = new Map<string, number>();
  let active = false;
  let stopped = false;
  const agent = system.apiNodes[0]?.agent.agentAddr ?? system.consul.httpAddr;
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const [command, ...args] = system.watcherArgs;
      const child = spawn(command ?? process.execPath, [...args, 'reconcile'], {
        env: { ...process.env, ...system.watcherEnv(agent) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      // Recorded for the test runner's sweep, like every server the testkit starts.
      const pidFile = child.pid === undefined ? null : registerPid(child.pid, 'watcher reconcile', command ?? process.execPath);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('error', () => resolve());
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        unregisterPid(pidFile);
        const key = code === null ? `signal ${signal}` : `exit ${code}`;
        exits.set(key, (exits.get(key) ?? 0) + 1);
        if (code !== 0 && code !== null) log(`  reconcile exited ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`);
        resolve();
      });
    });
  const loop = (async () => {
    for (let n = 0; !stopped && n < 100_000 && Date.now() < deadline; n++) {
      active = true;
      await once();
      active = false;
      for (let waited = 0; waited < system.timings.reconcilePeriodMs && !stopped; waited += 100) await sleep(100);
    }
  })();
  return {
    running: () => active,
    exits,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** What keeps the system from being whole ([] = whole): every node passing and published, status agrees, one Redis master, nothing excluded. */
async function notWhole(system: ChaosSystem, watcherRunning: () => boolean): Promise<string[]> {
  const sample = await takeSample(system, watcherRunning);
  const missing: string[] = [];
  for (const { name } of system.apiNodes) {
    if (sample.health.get(name) !== 'passing') missing.push(`${name} ${sample.health.get(name) ?? 'unregistered'} in Consul`);
    if (!sample.published.has(name)) missing.push(`${name} not in DNS`);
    if (sample.status?.published?.includes(name) !== true) missing.push(`${name} not in st-api/dns/status`);
  }
  if (sample.excluded.length > 0) missing.push(`excluded: ${sample.excluded.join(', ')}`);
  if (sample.healthyMasters !== 1) missing.push(`${sample.healthyMasters} healthy Redis master tags`);
  return missing;
}

/** Waits until the system is whole; returns what was still missing at the bound ([] = whole). */
async function waitWhole(
  system: ChaosSystem,
  watcherRunning: () => boolean,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let missing = ['not sampled yet'];
  while (Date.now() < until && signal?.aborted !== true) {
    missing = await notWhole(system, watcherRunning).catch((error: unknown) => [`sample failed: ${errorMessage(error)}`]);
    if (missing.length === 0) return [];
    await sleep(250);
  }
  return missing;
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

function renderTable(
  faults: readonly FaultRecord[],
  plays: readonly { play: PlayRecord; kind: string }[],
  violations: readonly { v: Violation; kind: string }[],
): string {
  const kinds = ['(no fault)', ...FAULTS.map((f) => f.name)];
  const header = ['fault', 'injected', 'recovered', 'plays', 'ok', 'retried', '503 doc', 'failed', 'max out-of-DNS ms', 'violations'];
  const rows = kinds.map((kind) => {
    const mine = faults.filter((f) => f.kind === kind);
    const p = plays.filter((x) => x.kind === kind).map((x) => x.play);
    const count = (o: PlayOutcome): string => String(p.filter((x) => x.outcome === o).length);
    const outs = mine.map((f) => f.outOfDnsAfterMs).filter((x): x is number => x !== null);
    const notOut = mine.some((f) => f.nodeOut !== undefined && f.outOfDnsAfterMs === null);
    return [
      kind,
      kind === '(no fault)' ? '-' : String(mine.length),
      kind === '(no fault)' ? '-' : String(mine.filter((f) => f.recoveredAt !== null).length),
      String(p.length),
      count('ok'),
      count('ok-after-retry'),
      count('documented-503'),
      count('failed'),
      outs.length === 0 ? (notOut ? 'not out' : '-') : `${Math.max(...outs)}${notOut ? ' (one not out)' : ''}`,
      String(violations.filter((x) => x.kind === kind).length),
    ];
  });
  const total = [
    'total',
    String(faults.length),
    String(faults.filter((f) => f.recoveredAt !== null).length),
    String(plays.length),
    ...(['ok', 'ok-after-retry', 'documented-503', 'failed'] as const).map((o) => String(plays.filter((x) => x.play.outcome === o).length)),
    '',
    String(violations.length),
  ];
  const all = [header, ...rows, total];
  const widths = header.map((_h, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => pad(r, widths)).join('\n');
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  // A function, not a property read: TypeScript would narrow it as if it could not change.
  const aborted = (): boolean => options.signal?.aborted === true;
  const started = Date.now();
  const stamp = (line: string): void => log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  const prng = mulberry32(options.seed);
  // A second stream for the clients, so the fault sequence does not depend on how many plays ran.
  const clientPrng = mulberry32(options.seed ^ 0x5bd1e995);
  const empty: ChaosReport = {
    exitCode: EXIT_CODES.HARNESS,
    seed: options.seed,
    faults: [],
    plays: { ok: 0, 'ok-after-retry': 0, 'documented-503': 0, failed: 0 },
    violations: [],
    table: '',
  };

  let system: ChaosSystem;
  try {
    system = await startChaosSystem({ timings: DEFAULT_TIMINGS, log: stamp });
  } catch (error) {
    stamp(`the system did not start: ${errorMessage(error)}`);
    return empty;
  }
  const faults: FaultRecord[] = [];
  const plays: PlayRecord[] = [];
  const hardDeadline = Date.now() + options.durationMs + 5 * RECOVERY_TIMEOUT_MS;
  const reconcile = startReconcileTimer(system, hardDeadline, stamp);
  const watcherRunning = (): boolean => reconcile.running() || system.consul.invocations().some((i) => i.finishedAt === null);
  const monitor = new InvariantMonitor(bounds(system));
  let sampleErrors = 0;
  let sampling: { stop(): Promise<void> } | null = null;
  let load: { stop(): Promise<void> } | null = null;
  let exitCode: number = EXIT_CODES.OK;
  try {
    stamp('waiting for every node to be healthy and published');
    const missing = await waitWhole(system, watcherRunning, 90_000, options.signal);
    if (missing.length > 0) throw new Error(`the system never became whole: ${missing.join('; ')}`);
    // From here on the invariants hold (DNS starts empty, before the first watcher run).
    sampling = startSampling(system, monitor, { intervalMs: 250, deadline: hardDeadline, watcherRunning, onError: () => sampleErrors++ });
    const port = system.apiNodes[0]?.port ?? 0;
    // One token per viewer, refreshed well before its 10-minute lifetime, as a client app would.
    const tokens = new Map<string, { token: string; at: number }>();
    const tokenOf = (viewer: string): string => {
      const held = tokens.get(viewer);
      if (held !== undefined && Date.now() - held.at < 300_000) return held.token;
      const token = system.demo.tokenFor(viewer, 600);
      tokens.set(viewer, { token, at: Date.now() });
      return token;
    };
    load = startLoad({
      addresses: () => system.publishedAddresses(),
      port,
      request: () => {
        const viewer = chaosViewer(clientPrng.int(0, CHAOS_VIEWERS - 1));
        return {
          token: tokenOf(viewer),
          body: JSON.stringify({ contentId: clientPrng.pick(CHAOS_TITLES), device: 'web', quality: 'auto' }),
        };
      },
      prng: clientPrng,
      workers: 2,
      attemptTimeoutMs: 2000,
      pauseMs: 50,
      maxAttempts: 3,
      deadline: hardDeadline,
      onPlay: (play) => plays.push(play),
    });
    const ctx: FaultContext = { system, prng, log: stamp, watcherEntry: system.watcherArgs[1] ?? '' };
    const injectUntil = Date.now() + options.durationMs;
    await sleep(2000);
    for (let n = 0; n < 1000 && Date.now() < injectUntil && !aborted(); n++) {
      const kind = prng.pick(FAULTS);
      const holdMs = prng.int(3000, 8000);
      const injectedAt = Date.now();
      let injected: Injected;
      try {
        injected = await kind.inject(ctx);
      } catch (error) {
        faults.push({
          kind: kind.name,
          target: '?',
          injectedAt,
          healedAt: null,
          recoveredAt: null,
          outOfDnsAfterMs: null,
          nodeOut: undefined,
          mysqlDown: false,
          error: errorMessage(error),
        });
        stamp(`could not inject ${kind.name}: ${errorMessage(error)}`);
        exitCode = EXIT_CODES.HARNESS;
        break;
      }
      const record: FaultRecord = {
        kind: kind.name,
        target: injected.target,
        injectedAt,
        healedAt: null,
        recoveredAt: null,
        outOfDnsAfterMs: null,
        nodeOut: injected.nodeOut,
        mysqlDown: injected.mysqlDown === true,
        error: null,
      };
      faults.push(record);
      stamp(`fault ${n + 1}: ${kind.name} (${injected.target}), holding ${holdMs} ms`);
      // A node that must leave DNS is held until it has (or the bound passed), so the table can say how long it took.
      const holdUntil = Date.now() + holdMs;
      const outBound = injectedAt + monitor.bounds.criticalToOutMs + monitor.bounds.excludedToOutMs;
      while (
        Date.now() < holdUntil ||
        (injected.nodeOut !== undefined && monitor.leftDnsAfter(injected.nodeOut, injectedAt) === undefined && Date.now() < outBound)
      ) {
        if (aborted()) break;
        await sleep(100);
      }
      try {
        await injected.heal();
        record.healedAt = Date.now();
      } catch (error) {
        record.error = errorMessage(error);
        stamp(`  heal failed: ${record.error}`);
      }
      if (injected.nodeOut !== undefined) {
        const left = monitor.leftDnsAfter(injected.nodeOut, injectedAt);
        record.outOfDnsAfterMs = left === undefined ? null : left - injectedAt;
      }
      const stillMissing = await waitWhole(system, watcherRunning, RECOVERY_TIMEOUT_MS, options.signal);
      if (stillMissing.length === 0) {
        record.recoveredAt = Date.now();
        stamp(
          `  healed; whole again after ${record.recoveredAt - injectedAt} ms${record.outOfDnsAfterMs === null ? '' : ` (out of DNS after ${record.outOfDnsAfterMs} ms)`}`,
        );
      } else if (!aborted()) {
        monitor.violations.push({
          at: Date.now(),
          invariant: 'the system recovers',
          detail: `not whole ${RECOVERY_TIMEOUT_MS} ms after healing ${kind.name} (${injected.target}): ${stillMissing.join('; ')}`,
        });
        stamp(`  NOT whole ${RECOVERY_TIMEOUT_MS} ms after the heal: ${stillMissing.join('; ')}`);
      }
      await sleep(prng.int(500, 2000));
    }
  } catch (error) {
    stamp(`harness error: ${errorMessage(error)}`);
    exitCode = EXIT_CODES.HARNESS;
  } finally {
    await load?.stop();
    await sampling?.stop();
    await reconcile.stop();
    stamp('stopping the system');
    await writeFile(
      join(system.dir, 'watcher-handle.log'),
      system.consul
        .invocations()
        .map(
          (i) =>
            `--- ${new Date(i.startedAt).toISOString()} ${i.node} index ${i.index}: ${i.signal ?? `exit ${i.exitCode}`} in ${i.durationMs} ms\n${i.output}`,
        )
        .join('\n'),
    ).catch(() => undefined);
    await system.stop();
  }

  const violations = [...monitor.violations, ...judgePlays(plays, faults)].sort((a, b) => a.at - b.at);
  const kindAt = (at: number): string => faultAt(faults, at)?.kind ?? '(no fault)';
  const table = renderTable(
    faults,
    plays.map((play) => ({ play, kind: kindAt(play.startedAt) })),
    violations.map((v) => ({ v, kind: kindAt(v.at) })),
  );
  const count = (o: PlayOutcome): number => plays.filter((p) => p.outcome === o).length;
  const lines = [
    '',
    `seed ${options.seed}, ${faults.length} fault(s), ${plays.length} plays, ${monitor.samples} invariant samples (${sampleErrors} failed to read)`,
    table,
    '',
    `longest a critical or excluded node stayed in DNS: ${monitor.longestDueOutMs} ms (bounds ${monitor.bounds.criticalToOutMs} / ${monitor.bounds.excludedToOutMs} ms)`,
    `longest without exactly one healthy Redis master tag: ${monitor.longestNotOneMasterMs} ms (window ${monitor.bounds.failoverWindowMs} ms)`,
    `longest st-api/dns/status disagreed with DNS while no watcher ran: ${monitor.longestStatusWrongMs} ms (bound ${monitor.bounds.statusStaleMs} ms)`,
    `reconcile runs: ${[...reconcile.exits].map(([k, v]) => `${v}× ${k}`).join(', ') || 'none'}; watch handler runs: ${summariseHandlers(system)}`,
    ...violations.slice(0, 30).map((v) => `VIOLATION [${((v.at - started) / 1000).toFixed(1)}s] ${v.invariant}: ${v.detail}`),
    ...(violations.length > 30 ? [`… and ${violations.length - 30} more`] : []),
    `logs: ${join(system.dir)} (removed at exit unless ST_TEST_KEEP_DIRS=1)`,
  ];
  for (const line of lines) log(line);
  if (aborted()) exitCode = EXIT_CODES.INTERRUPTED;
  else if (exitCode === EXIT_CODES.OK && violations.length > 0) exitCode = EXIT_CODES.INVARIANT_BROKEN;
  return {
    exitCode,
    seed: options.seed,
    faults,
    plays: {
      ok: count('ok'),
      'ok-after-retry': count('ok-after-retry'),
      'documented-503': count('documented-503'),
      failed: count('failed'),
    },
    violations,
    table,
  };
}

function summariseHandlers(system: ChaosSystem): string {
  const counts = new Map<string, number>();
  for (const i of system.consul.invocations()) {
    const key = i.finishedAt === null ? 'running' : i.signal !== null ? `signal ${i.signal}` : `exit ${i.exitCode}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, v]) => `${v}× ${k}`).join(', ') || 'none';
}
