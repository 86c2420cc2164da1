// Steady play load through DNS: each play resolves the record (the addresses the Route53 double
// publishes, in a shuffled order, as round-robin DNS hands them out) and POSTs
// /v1/playback-urls to the first. The client model: it tries the next published address only
// when it got no HTTP answer at all (connection refused or reset, or nothing within the attempt
// timeout: a SIGSTOPped node still accepts connections), at most three addresses per play. It
// never retries an HTTP answer, not even a 503: those are the outcomes this suite judges.
import type { Prng } from './prng.ts';

export type PlayOutcome = 'ok' | 'ok-after-retry' | 'documented-503' | 'failed';

export interface PlayRecord {
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly outcome: PlayOutcome;
  /** Why it failed, or why an attempt before the answer failed; '' for a clean play. */
  readonly cause: string;
  readonly attempts: number;
}

export interface LoadOptions {
  readonly addresses: () => readonly string[];
  readonly port: number;
  /** The next play's viewer: the client token and the request body (each play picks one). */
  readonly request: () => { readonly token: string; readonly body: string };
  readonly prng: Prng;
  readonly workers: number;
  readonly attemptTimeoutMs: number;
  /** Pause between one worker's plays. */
  readonly pauseMs: number;
  readonly maxAttempts: number;
  /** Hard bound: no play starts after it. */
  readonly deadline: number;
  readonly onPlay: (play: PlayRecord) => void;
}

function shuffled<T>(items: readonly T[], prng: Prng): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

/** No HTTP answer: the name of the network error (ECONNREFUSED, ECONNRESET, timeout …). */
function transportCause(error: unknown): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'no answer (timeout)';
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}

type Attempt = { answered: true; status: number; code: string; detail: string; retryAfter: boolean } | { answered: false; cause: string };

async function attempt(address: string, request: { token: string; body: string }, options: LoadOptions): Promise<Attempt> {
  try {
    const response = await fetch(`http://${address}:${options.port}/v1/playback-urls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${request.token}` },
      body: request.body,
      signal: AbortSignal.timeout(options.attemptTimeoutMs),
    });
    const text = await response.text();
    let code = '';
    let detail = '';
    if (response.status !== 200) {
      try {
        const problem = JSON.parse(text) as { code?: unknown; detail?: unknown };
        code = typeof problem.code === 'string' ? problem.code : 'no-code';
        if (typeof problem.detail === 'string') detail = problem.detail;
      } catch {
        code = 'not-json';
      }
    }
    return { answered: true, status: response.status, code, detail, retryAfter: response.headers.has('retry-after') };
  } catch (error) {
    return { answered: false, cause: transportCause(error) };
  }
}

export async function play(options: LoadOptions): Promise<PlayRecord> {
  const startedAt = Date.now();
  const addresses = shuffled(options.addresses(), options.prng).slice(0, options.maxAttempts);
  if (addresses.length === 0)
    return { startedAt, finishedAt: Date.now(), outcome: 'failed', cause: 'DNS answered no address', attempts: 0 };
  const misses: string[] = [];
  // A retry repeats the same play (same viewer, same title) at another address.
  const request = options.request();
  for (const address of addresses) {
    const result = await attempt(address, request, options);
    if (!result.answered) {
      misses.push(`${address}: ${result.cause}`);
      continue;
    }
    const finishedAt = Date.now();
    const attempts = misses.length + 1;
    if (result.status === 200)
      return { startedAt, finishedAt, outcome: misses.length === 0 ? 'ok' : 'ok-after-retry', cause: misses.join('; '), attempts };
    // api/errors.ts: 503 DEPENDENCY_UNAVAILABLE with Retry-After is what a play gets while MySQL is gone and nothing fresh is cached.
    if (result.status === 503 && result.code === 'DEPENDENCY_UNAVAILABLE' && result.retryAfter) {
      return {
        startedAt,
        finishedAt,
        outcome: 'documented-503',
        cause: `HTTP 503 DEPENDENCY_UNAVAILABLE (${result.detail}) from ${address}`,
        attempts,
      };
    }
    return {
      startedAt,
      finishedAt,
      outcome: 'failed',
      cause: `HTTP ${result.status} ${result.code} (${result.detail}) from ${address}`,
      attempts,
    };
  }
  return {
    startedAt,
    finishedAt: Date.now(),
    outcome: 'failed',
    cause: `no answer from ${misses.length} address(es): ${misses.join('; ')}`,
    attempts: misses.length,
  };
}

/** Runs `workers` clients playing in a loop until stop() or the deadline; bounded in count too. */
export function startLoad(options: LoadOptions): { stop(): Promise<void> } {
  let running = true;
  const worker = async (): Promise<void> => {
    for (let n = 0; running && n < 1_000_000 && Date.now() < options.deadline; n++) {
      options.onPlay(await play(options));
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  const workers = Promise.all(Array.from({ length: options.workers }, () => worker()));
  return {
    async stop() {
      running = false;
      await workers;
    },
  };
}
