// The Consul check target. Each probe runs under its own timeout, so one stalled dependency cannot
// stretch the answer past the check's timeout, and the body is one line an on-call engineer reads
// in the Consul UI: `warn mysql=ok(1.1ms) redis=down keys=ok(4) lag=ok(3ms)`.

import { tlsFailure } from '../../common/tls-failure.ts';
import { withTimeout } from '../../common/with-timeout.ts';

export type ProbeStatus = 'ok' | 'warn' | 'fail';

export interface ProbeOutcome {
  status: ProbeStatus;
  /** Short, plain detail shown in parentheses or after `=`, e.g. `ok(0.4ms,master)`. */
  text: string;
}

export interface Probe {
  name: string;
  /** A failed essential probe makes the node critical; any other failure only a warning (st-api can serve without it). */
  essential: boolean;
  run(timeoutMs: number): Promise<ProbeOutcome>;
}

export type HealthState = 'passing' | 'warning' | 'critical';

export interface HealthReport {
  state: HealthState;
  /** Consul's HTTP check mapping: 2xx passing, 429 warning, anything else critical. */
  httpStatus: 200 | 429 | 503;
  body: string;
  /** Each probe's status, for the metrics. */
  probes: { name: string; status: ProbeStatus }[];
}

const HTTP_STATUS: Record<HealthState, 200 | 429 | 503> = { passing: 200, warning: 429, critical: 503 };
const PREFIX: Record<HealthState, string> = { passing: 'ok', warning: 'warn', critical: 'fail' };

export async function checkDeepHealth(probes: readonly Probe[], timeoutMs: number): Promise<HealthReport> {
  const outcomes = await Promise.all(probes.map((probe) => runBounded(probe, timeoutMs)));
  let state: HealthState = 'passing';
  probes.forEach((probe, index) => {
    const status = outcomes[index]?.status ?? 'fail';
    if (status === 'fail' && probe.essential) state = 'critical';
    else if (status !== 'ok' && state === 'passing') state = 'warning';
  });
  const parts = probes.map((probe, index) => `${probe.name}=${outcomes[index]?.text ?? 'unknown'}`);
  return {
    state,
    httpStatus: HTTP_STATUS[state],
    body: `${PREFIX[state]} ${parts.join(' ')}`,
    probes: probes.map((probe, index) => ({ name: probe.name, status: outcomes[index]?.status ?? 'fail' })),
  };
}

class ProbeTimeout extends Error {}

async function runBounded(probe: Probe, timeoutMs: number): Promise<ProbeOutcome> {
  try {
    return await withTimeout(probe.run(timeoutMs), timeoutMs, () => new ProbeTimeout());
  } catch (error) {
    return { status: 'fail', text: error instanceof ProbeTimeout ? `timeout(${timeoutMs}ms)` : describeFailure(error) };
  }
}

/** Error text for the Consul UI: the error code or first words, never a stack, SQL or secret. */
export function describeFailure(error: unknown): string {
  // e.g. error(tls:certificate-untrusted): says which file to look at, where the code alone would not.
  const tls = tlsFailure(error);
  if (tls !== undefined) return `error(tls:${tls})`;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return `error(${code.toLowerCase()})`;
  // ioredis' commandTimeout: the server did not answer in time, or this process was too busy to read it.
  if (error instanceof Error && error.message === 'Command timed out') return 'timeout(command)';
  return 'error';
}

export function elapsed(startedAt: bigint): string {
  const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)}ms`;
}
