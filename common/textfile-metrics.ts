// Prometheus metrics for the short-lived programs (the watcher, the hooks), written the way
// node_exporter's textfile collector expects from batch jobs: the whole file is written under a
// temporary name (`<name>.prom.<pid>`, which the collector ignores) and renamed over `<name>.prom`,
// so a scrape never reads half a file. The exposition text comes from prom-client's own registry,
// imported only when a file is written: the hooks start a process per Sentinel call and must not
// pay for it when metrics are off.
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface TextfileMetric {
  readonly name: string;
  readonly help: string;
  /** Batch jobs export gauges; a counter only for totals carried over from run to run in the file. */
  readonly type?: 'gauge' | 'counter';
  readonly samples: readonly Sample[];
}

/** The samples of the file the previous run wrote (empty when there is none or it cannot be read). */
export class PreviousSamples {
  readonly #samples: { name: string; labels: Record<string, string>; value: number }[];

  constructor(text: string) {
    this.#samples = parseExposition(text);
  }

  /** The value of `name` with exactly these labels. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    const wanted = Object.entries(labels);
    return this.#samples.find(
      (sample) =>
        sample.name === name && Object.keys(sample.labels).length === wanted.length && wanted.every(([k, v]) => sample.labels[k] === v),
    )?.value;
  }

  /** Every sample of `name`, whatever its labels. */
  all(name: string): Sample[] {
    return this.#samples.filter((sample) => sample.name === name).map(({ labels, value }) => ({ labels, value }));
  }
}

/** The exposition text (Prometheus text format 0.0.4) of these metrics, through prom-client's registry. */
export async function renderTextfile(metrics: readonly TextfileMetric[]): Promise<string> {
  const { Counter, Gauge, Registry } = await import('prom-client');
  const registry = new Registry();
  for (const metric of metrics) {
    const labelNames = [...new Set(metric.samples.flatMap((sample) => Object.keys(sample.labels ?? {})))];
    const options = { name: metric.name, help: metric.help, labelNames, registers: [registry] };
    if (metric.type === 'counter') {
      const counter = new Counter(options);
      for (const sample of metric.samples) counter.inc(sample.labels ?? {}, sample.value);
    } else {
      const gauge = new Gauge(options);
      for (const sample of metric.samples) gauge.set(sample.labels ?? {}, sample.value);
    }
  }
  return await registry.metrics();
}

export function textfilePath(dir: string, name: string): string {
  return join(dir, `${name}.prom`);
}

/** Writes `<dir>/<name>.prom` atomically (temporary file, then rename); returns its path. */
export async function writeTextfile(dir: string, name: string, metrics: readonly TextfileMetric[]): Promise<string> {
  const text = await renderTextfile(metrics);
  const path = textfilePath(dir, name);
  const temporary = `${path}.${process.pid}`;
  try {
    await writeFile(temporary, text);
    // node_exporter runs as another user; the units' UMask=0077 would leave the file unreadable to it.
    await chmod(temporary, 0o644);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  return path;
}

export async function readPreviousSamples(dir: string, name: string): Promise<PreviousSamples> {
  try {
    return new PreviousSamples(await readFile(textfilePath(dir, name), 'utf8'));
  } catch {
    // First run, or the file was removed: nothing to carry over.
    return new PreviousSamples('');
  }
}

/**
 * The run's metrics, when `dir` is set: `build` gets the previous file's samples (to carry over the
 * last success, totals). Never throws: metrics must not change a run's outcome or exit code, so a
 * failure is one warning in the log.
 */
export async function publishTextfile(
  dir: string | undefined,
  name: string,
  logger: Logger,
  build: (previous: PreviousSamples) => TextfileMetric[],
): Promise<void> {
  if (dir === undefined || dir === '') return;
  try {
    const path = await writeTextfile(dir, name, build(await readPreviousSamples(dir, name)));
    logger.debug({ path }, 'metrics written for the textfile collector');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    logger.warn(
      { dir, err: code === undefined ? error : undefined },
      `could not write the metrics file ${textfilePath(dir, name)} for node_exporter's textfile collector (${code ?? (error instanceof Error ? error.message : String(error))}); the run's result is unaffected`,
    );
  }
}

/** Samples of the text format, enough to read back what renderTextfile wrote (no timestamps, no exemplars). */
export function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)\s*$/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ''] = (pair[2] ?? '').replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = Number(match[3]);
    if (!Number.isNaN(value) || match[3] === 'NaN') samples.push({ name: match[1] ?? '', labels, value });
  }
  return samples;
}
