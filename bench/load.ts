// One autocannon run (programmatic API) over a pool of prepared requests (plays, POST) or of paths
// (GET), plus what the server and its dependencies spent in CPU meanwhile.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import autocannon from 'autocannon';

// autocannon keeps each response body as a string (PipelinedRequestsQueue#addBody: `body += chunk`)
// for expectBody, verifyBody and onResponse, none of which the bench uses. For the 160-620 KB
// tokenized manifests that decoding is what limits the load generator: against a static node:http
// server answering 640 KB, 807 req/s with it and 3,135 req/s without, on this project's 2-core
// machines. So bodies are dropped here (autocannon still counts their bytes); answers are checked
// with fetch before each load instead. For small answers (the plays) it changes nothing measurable.
const pipelinedQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js') as
  { prototype?: { addBody?: unknown } } | undefined;
if (typeof pipelinedQueue?.prototype?.addBody === 'function') pipelinedQueue.prototype.addBody = () => undefined;
else
  process.stderr.write(
    'bench: autocannon has no PipelinedRequestsQueue#addBody any more; response bodies are decoded (large answers: the load generator is the limit)\n',
  );

export interface Prepared {
  authorization: string;
  body: string;
}

/** Picks the next request; `sequence` counts requests set up in this run. */
export type Picker = (sequence: number) => Prepared;

/** Picks the path of the next GET (no body, no credentials: the URL is the credential). */
export type PathPicker = (sequence: number) => string;

export interface LoadResult {
  requestsPerSecond: number;
  total: number;
  p50: number;
  p99: number;
  /** Response bytes (headers and body) received per second. */
  bytesPerSecond: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  durationSeconds: number;
  /**
   * CPU used over the run, in % of one core: each watched process, `autocannon` (this process) and
   * `other` (everything else on the machine: the bench does not own it, so it is reported, not controlled).
   */
  cpu: Record<string, number>;
}

export interface LoadOptions {
  baseUrl: string;
  connections: number;
  /** POST /v1/playback-urls with the picked headers and body; or `pickPath`: GET of the picked path. */
  pick?: Picker;
  pickPath?: PathPicker;
  /** Headers of each GET (pickPath), e.g. the Accept-Encoding players send. */
  headers?: Record<string, string>;
  /** Seconds; or `amount` requests. */
  durationSeconds?: number;
  amount?: number;
  /** pid by name, for the CPU column. */
  watch?: Record<string, number>;
}

const PATH = '/v1/playback-urls';
/** Per-request timeout (s): a stalled server shows up as timeouts, never as a hung bench. */
const REQUEST_TIMEOUT_SECONDS = 10;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { pick, pickPath } = options;
  if ((pick === undefined) === (pickPath === undefined)) throw new Error('runLoad: give exactly one of pick and pickPath');
  let sequence = 0;
  const before = sampleCpu(options.watch ?? {});
  const hardLimitMs = ((options.durationSeconds ?? 120) + REQUEST_TIMEOUT_SECONDS + 30) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.baseUrl,
        connections: options.connections,
        pipelining: 1,
        timeout: REQUEST_TIMEOUT_SECONDS,
        ...(options.amount === undefined ? { duration: options.durationSeconds ?? 10 } : { amount: options.amount }),
        requests: [
          pick === undefined
            ? {
                method: 'GET',
                path: '/',
                setupRequest: (request) => ({
                  ...request,
                  method: 'GET',
                  path: pickPath?.(sequence++) ?? '/',
                  headers: { ...options.headers },
                }),
              }
            : {
                method: 'POST',
                path: PATH,
                setupRequest: (request) => {
                  const next = pick(sequence++);
                  // autocannon adds Content-Length to the headers object it gets: a fresh one each time.
                  return {
                    ...request,
                    headers: { 'content-type': 'application/json', authorization: next.authorization },
                    body: next.body,
                  };
                },
              },
        ],
      },
      (error: Error | null, done: autocannon.Result) => (error === null || error === undefined ? resolve(done) : reject(error)),
    );
    timer = setTimeout(() => {
      instance.stop();
      reject(new Error(`load run did not finish within ${hardLimitMs} ms`));
    }, hardLimitMs);
  }).finally(() => clearTimeout(timer));
  const cpu = cpuShares(before, sampleCpu(options.watch ?? {}), 'autocannon');
  const statusCounts: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) statusCounts[code] = stats.count ?? 0;
  return {
    requestsPerSecond: result.requests.total / result.duration,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bytesPerSecond: result.throughput.total / result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCounts,
    durationSeconds: result.duration,
    cpu,
  };
}

/**
 * Starts a CPU window over the watched processes; the function it returns ends it and gives, in % of one
 * core, each watched process, this process (as `self`) and `other` (everything else on the machine).
 */
export function cpuWindow(watch: Record<string, number>, self: string): () => Record<string, number> {
  const before = sampleCpu(watch);
  return () => cpuShares(before, sampleCpu(watch), self);
}

function cpuShares(before: ReturnType<typeof sampleCpu>, after: ReturnType<typeof sampleCpu>, self: string): Record<string, number> {
  const cpu: Record<string, number> = {};
  const seconds = (after.at - before.at) / 1000;
  for (const [name, ticks] of Object.entries(after.ticks)) {
    const start = before.ticks[name];
    if (start !== undefined) cpu[name] = ((ticks - start) / CLOCK_TICKS / seconds) * 100;
  }
  cpu[self] = ((after.self - before.self) / 1e6 / seconds) * 100;
  const ours = Object.values(cpu).reduce((sum, value) => sum + value, 0);
  if (after.machine !== undefined && before.machine !== undefined)
    cpu['other'] = Math.max(0, ((after.machine - before.machine) / CLOCK_TICKS / seconds) * 100 - ours);
  return cpu;
}

/** USER_HZ; 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

function sampleCpu(watch: Record<string, number>): {
  at: number;
  self: number;
  machine: number | undefined;
  ticks: Record<string, number>;
} {
  const ticks: Record<string, number> = {};
  for (const [name, pid] of Object.entries(watch)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 overall, 12 and 13 after the command name.
      ticks[name] = Number(fields[11]) + Number(fields[12]);
    } catch {
      // not on Linux or already gone: no CPU figure for it
    }
  }
  let machine: number | undefined;
  try {
    // Busy time of all CPUs: user nice system idle iowait irq softirq steal; everything but idle and iowait.
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
    machine = fields.reduce((sum, value, index) => (index === 3 || index === 4 ? sum : sum + value), 0);
  } catch {
    machine = undefined;
  }
  const usage = process.cpuUsage();
  return { at: performance.now(), self: usage.user + usage.system, machine, ticks };
}

/** CPU seconds (user + system) one process has used so far; undefined when /proc cannot tell. */
export function processCpuSeconds(pid: number): number | undefined {
  const ticks = sampleCpu({ pid }).ticks['pid'];
  return ticks === undefined ? undefined : ticks / CLOCK_TICKS;
}

/** CPU of one process over `ms`, in % of one core (undefined when /proc cannot tell). */
export async function processCpu(pid: number, ms: number): Promise<number | undefined> {
  const before = sampleCpu({ pid });
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sampleCpu({ pid });
  const [start, end] = [before.ticks['pid'], after.ticks['pid']];
  return start === undefined || end === undefined ? undefined : ((end - start) / CLOCK_TICKS / ((after.at - before.at) / 1000)) * 100;
}

/** CPU used over `ms` by everything on the machine except the watched processes and this one, in % of one core. */
export async function machineBusy(watch: Record<string, number>, ms: number): Promise<number | undefined> {
  const before = sampleCpu(watch);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sampleCpu(watch);
  if (before.machine === undefined || after.machine === undefined) return undefined;
  const seconds = (after.at - before.at) / 1000;
  let ours = (after.self - before.self) / 1e6;
  for (const [name, ticks] of Object.entries(after.ticks)) ours += (ticks - (before.ticks[name] ?? ticks)) / CLOCK_TICKS;
  return Math.max(0, ((after.machine - before.machine) / CLOCK_TICKS - ours) / seconds) * 100;
}
