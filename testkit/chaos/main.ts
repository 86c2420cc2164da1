// npm run chaos -- [--seed N] [--duration S]: the whole system on loopback under play load and a
// seeded sequence of faults; prints faults × outcomes and exits non-zero when an invariant broke.
import { parseArgs } from 'node:util';
import { EXIT_CODES, runChaos } from './run.ts';

const USAGE = `Usage: npm run chaos -- [--seed N] [--duration S]

Starts three st-api nodes, MariaDB, Redis (master + 2 replicas) with three Sentinels and the hooks,
the Consul double (an agent per node, the real check and watch), the watcher and the Route53 double,
all on loopback; plays through the published DNS records while a seeded random sequence of faults is
injected and healed one at a time, and checks the invariants throughout.

  --seed N        PRNG seed (default: random, printed); the same seed picks the same faults and targets
  --duration S    seconds during which faults are injected (default 120); the last fault is still
                  healed and awaited afterwards
  -h, --help      this text

Exit codes: 0 every invariant held, 1 an invariant broke, 2 usage, 3 the system could not be
started or a fault could not be injected, 130 interrupted (Ctrl-C).
`;

function parse(argv: readonly string[]): { seed: number; durationMs: number } | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { seed: { type: 'string' }, duration: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (values.help === true) return '';
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) return `--seed must be an integer in [0, 2^32), got ${values.seed}`;
  const duration = values.duration === undefined ? 120 : Number(values.duration);
  if (!Number.isFinite(duration) || duration < 5 || duration > 3600)
    return `--duration must be between 5 and 3600 seconds, got ${values.duration}`;
  return { seed, durationMs: duration * 1000 };
}

const parsed = parse(process.argv.slice(2));
if (typeof parsed === 'string') {
  if (parsed !== '') process.stderr.write(`chaos: ${parsed}\n\n`);
  process.stdout.write(USAGE);
  process.exit(parsed === '' ? EXIT_CODES.OK : EXIT_CODES.USAGE);
}
const abort = new AbortController();
// First Ctrl-C: stop injecting, heal, stop everything, print the table. Second: leave now (the exit hook kills our children by pid).
let interrupts = 0;
const onSignal = (): void => {
  interrupts++;
  if (interrupts > 1) process.exit(EXIT_CODES.INTERRUPTED);
  process.stderr.write('chaos: interrupted; healing and stopping everything (Ctrl-C again to leave at once)\n');
  abort.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.stdout.write(`chaos: seed ${parsed.seed}, faults for ${parsed.durationMs / 1000} s (rerun with --seed ${parsed.seed})\n`);
const report = await runChaos({ ...parsed, log: (line) => process.stdout.write(`${line}\n`), signal: abort.signal });
process.stdout.write(`chaos: ${report.exitCode === 0 ? 'every invariant held' : `exit ${report.exitCode}`}\n`);
process.exit(report.exitCode);
