// The agent's watch plans for `type: service` with a script handler given as
// `args`, as hashicorp/consul api/watch/plan.go and agent/watch_handler.go run
// them:
// - a blocking-query loop on the agent's /v1/health/service/<svc> (over real
//   HTTP, so the handler sees exactly what the API serves);
// - the handler fires on the first result, then only when the index moved AND
//   the decoded result differs (reflect.DeepEqual); changes that land while it
//   runs are coalesced, since the next query returns only the latest state;
// - serial per watch (the handler runs inside the plan's loop), concurrent
//   across watches; a hung handler blocks its watch;
// - stdin = the result decoded into api.ServiceEntry and re-encoded by
//   json.Encoder; env = the agent's environment + CONSUL_INDEX; stdout and
//   stderr share one 4 KB circular buffer; a non-zero exit is only logged;
// - reload() stops every plan and starts a new one, so every handler fires
//   again with unchanged data. As in the agent, a handler still running from
//   the old plan is not killed, so it may overlap the new plan's first call.
// Query errors back off 5s × failures² (≤ 180s), scaled by errorBackoffScale.
import { spawn, type ChildProcess } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { goEncode, toGoServiceEntries, type GoValue } from './go-json.ts';

export interface WatchSpec {
  /** Shown in the invocation log; defaults to the service name. */
  readonly name?: string;
  readonly type: 'service';
  readonly service: string;
  readonly tag?: string | readonly string[];
  readonly passingOnly?: boolean;
  /** The handler, executed directly (no shell). */
  readonly args: readonly string[];
  /** Added to the agent's environment (process.env) for this handler. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export interface Invocation {
  readonly watch: string;
  readonly node: string;
  /** The index handed over as CONSUL_INDEX. */
  readonly index: number;
  readonly stdin: string;
  readonly startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the handler could not be started at all. */
  spawnError: string | null;
  /** Last 4 KB of stdout and stderr interleaved, as the agent logs it. */
  output: string;
  stdout: string;
  stderr: string;
}

export interface WatchRunnerOptions {
  /** The agent's HTTP address, e.g. http://127.0.0.1:8500. */
  readonly agentAddr: string;
  readonly node: string;
  /** `?wait=` on each blocking query (Consul's default when unset is 5m). */
  readonly queryWaitMs: number;
  /** Multiplies the 5s × failures² back-off after a failed query. */
  readonly errorBackoffScale: number;
  readonly record: (invocation: Invocation) => void;
}

const WATCH_BUF_SIZE = 4 * 1024;
const MAX_BACKOFF_MS = 180_000;

class RingBuffer {
  #data = Buffer.alloc(0);
  write(chunk: Buffer): void {
    this.#data = Buffer.concat([this.#data, chunk]);
    if (this.#data.length > WATCH_BUF_SIZE) this.#data = this.#data.subarray(this.#data.length - WATCH_BUF_SIZE);
  }
  toString(): string {
    return this.#data.toString('utf8');
  }
}

/** Every handler child still running, so stop() and process exit can kill them. */
const liveHandlers = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveHandlers) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** One run of a plan: reload() replaces it with a fresh one. */
class Plan {
  readonly #spec: WatchSpec;
  readonly #options: WatchRunnerOptions;
  readonly #abort = new AbortController();
  readonly #children = new Set<ChildProcess>();
  readonly done: Promise<void>;
  #stopped = false;

  constructor(spec: WatchSpec, options: WatchRunnerOptions) {
    this.#spec = spec;
    this.#options = options;
    this.done = this.#loop();
  }

  get label(): string {
    return this.#spec.name ?? this.#spec.service;
  }

  /** Ends the loop; a running handler finishes on its own (as in the agent). */
  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
  }

  kill(): void {
    this.stop();
    for (const child of this.#children) child.kill('SIGKILL');
  }

  async #query(index: number): Promise<{ index: number; result: GoValue }> {
    const query = new URLSearchParams();
    const tags = this.#spec.tag === undefined ? [] : typeof this.#spec.tag === 'string' ? [this.#spec.tag] : this.#spec.tag;
    for (const tag of tags) query.append('tag', tag);
    if (this.#spec.passingOnly === true) query.set('passing', '1');
    if (index > 0) {
      query.set('index', String(index));
      query.set('wait', `${Math.max(1, Math.round(this.#options.queryWaitMs))}ms`);
    }
    const url = `${this.#options.agentAddr}/v1/health/service/${encodeURIComponent(this.#spec.service)}?${query.toString()}`;
    const response = await fetch(url, { signal: this.#abort.signal });
    const text = await response.text();
    if (!response.ok) throw new Error(`Unexpected response code: ${response.status} (${text})`);
    const header = response.headers.get('x-consul-index');
    const newIndex = header === null ? NaN : Number(header);
    if (!Number.isFinite(newIndex)) throw new Error('Missing X-Consul-Index header');
    return { index: newIndex, result: toGoServiceEntries(JSON.parse(text) as unknown) };
  }

  async #loop(): Promise<void> {
    let lastIndex: number | null = null;
    let lastResult: GoValue | undefined;
    let failures = 0;
    // Bounded only by stop(): a plan lives as long as its agent.
    while (!this.#stopped) {
      let got: { index: number; result: GoValue };
      try {
        got = await this.#query(lastIndex ?? 0);
        failures = 0;
      } catch {
        if (this.#stopped) return;
        failures++;
        const backoff = Math.min(5000 * failures * failures, MAX_BACKOFF_MS) * this.#options.errorBackoffScale;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          this.#abort.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
        continue;
      }
      if (this.#stopped) return;
      if (lastIndex !== null && got.index === lastIndex) continue;
      const first = lastIndex === null;
      // An index that went backwards is a reset: block from 0 next time.
      lastIndex = lastIndex !== null && got.index < lastIndex ? 0 : got.index;
      if (!first && isDeepStrictEqual(lastResult, got.result)) continue;
      lastResult = got.result;
      await this.#runHandler(got.index, got.result);
    }
  }

  async #runHandler(index: number, result: GoValue): Promise<void> {
    const [command, ...args] = this.#spec.args;
    const stdin = goEncode(result);
    const invocation: Invocation = {
      watch: this.label,
      node: this.#options.node,
      index,
      stdin,
      startedAt: Date.now(),
      finishedAt: null,
      durationMs: null,
      exitCode: null,
      signal: null,
      spawnError: null,
      output: '',
      stdout: '',
      stderr: '',
    };
    this.#options.record(invocation);
    if (command === undefined) {
      invocation.spawnError = 'watch has no args';
      return;
    }
    installExitHook();
    const combined = new RingBuffer();
    const out = new RingBuffer();
    const err = new RingBuffer();
    await new Promise<void>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(command, args, {
          env: { ...process.env, ...this.#spec.env, CONSUL_INDEX: String(index) },
          stdio: ['pipe', 'pipe', 'pipe'],
          ...(this.#spec.cwd === undefined ? {} : { cwd: this.#spec.cwd }),
        });
      } catch (error) {
        invocation.spawnError = error instanceof Error ? error.message : String(error);
        resolve();
        return;
      }
      this.#children.add(child);
      liveHandlers.add(child);
      const finish = (): void => {
        this.#children.delete(child);
        liveHandlers.delete(child);
        invocation.finishedAt = Date.now();
        invocation.durationMs = invocation.finishedAt - invocation.startedAt;
        invocation.output = combined.toString();
        invocation.stdout = out.toString();
        invocation.stderr = err.toString();
        resolve();
      };
      child.stdout?.on('data', (chunk: Buffer) => {
        combined.write(chunk);
        out.write(chunk);
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        combined.write(chunk);
        err.write(chunk);
      });
      // A handler that never reads stdin must not fail the run (EPIPE).
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(stdin);
      child.once('error', (error) => {
        invocation.spawnError = error.message;
        finish();
      });
      child.once('close', (code, signal) => {
        invocation.exitCode = code;
        invocation.signal = signal;
        finish();
      });
    });
  }
}

export class WatchHandle {
  readonly spec: WatchSpec;
  readonly #options: WatchRunnerOptions;
  #plan: Plan | null;
  readonly #retired = new Set<Plan>();

  constructor(spec: WatchSpec, options: WatchRunnerOptions) {
    if (spec.type !== 'service') throw new Error(`watch type ${String(spec.type)} is not simulated (only "service")`);
    if (spec.args.length === 0) throw new Error('watch args must name the handler executable');
    this.spec = spec;
    this.#options = options;
    this.#plan = new Plan(spec, options);
  }

  get running(): boolean {
    return this.#plan !== null;
  }

  /** The agent's reloadWatches: the old plan stops, a new one starts at once. */
  reload(): void {
    if (this.#plan === null) return;
    const old = this.#plan;
    old.stop();
    this.#retired.add(old);
    void old.done.finally(() => this.#retired.delete(old));
    this.#plan = new Plan(this.spec, this.#options);
  }

  /** Stops the plan and kills any handler still running (a test must always be able to stop). */
  async stop(): Promise<void> {
    const plans = [...this.#retired, ...(this.#plan === null ? [] : [this.#plan])];
    this.#plan = null;
    for (const plan of plans) plan.kill();
    await Promise.race([Promise.allSettled(plans.map((p) => p.done)), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  }
}
