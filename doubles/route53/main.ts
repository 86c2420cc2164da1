// Standalone Route53 double for manual runs and other programs' tests:
//   npm run double:route53 -- [--port N] [--zone play.example.com]… [--insync-delay-ms N] [--no-rate-limit | --legacy-rate-limit]
// Prints one JSON line {"endpoint": …, "zones": {name: id}} and runs until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { LEGACY_LIMITS, startRoute53Double } from './server.ts';

const USAGE = `Usage: npm run double:route53 -- [--port N] [--zone NAME]… [--insync-delay-ms N] [--no-rate-limit | --legacy-rate-limit]

Starts the Route53 double on 127.0.0.1, prints one JSON line {"endpoint": …, "zones": {name: id}}, and
serves until SIGINT or SIGTERM.

Options:
  --port N              port (default 0: a free one)
  --zone NAME           create a hosted zone; repeatable
  --insync-delay-ms N   how long a change stays PENDING before INSYNC (default 200)
  --no-rate-limit       no throttling
  --legacy-rate-limit   the old flat 5 requests/s instead of the documented token buckets
  -h, --help            this text
`;

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string', default: '0' },
        zone: { type: 'string', multiple: true, default: [] },
        'insync-delay-ms': { type: 'string', default: '200' },
        'no-rate-limit': { type: 'boolean', default: false },
        'legacy-rate-limit': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`double:route53: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = Number(values.port);
  const insyncDelayMs = Number(values['insync-delay-ms']);
  if (!Number.isInteger(port) || port < 0 || port > 65_535 || !Number.isInteger(insyncDelayMs) || insyncDelayMs < 0) {
    process.stderr.write('double:route53: --port and --insync-delay-ms take non-negative integers\n');
    return 2;
  }
  if (values['no-rate-limit'] && values['legacy-rate-limit']) {
    process.stderr.write('double:route53: --no-rate-limit and --legacy-rate-limit exclude each other\n');
    return 2;
  }
  const double = await startRoute53Double({
    port,
    insyncDelayMs,
    // Default: the documented token buckets (throttle.ts).
    ...(values['no-rate-limit'] ? { rateLimit: false as const } : {}),
    ...(values['legacy-rate-limit'] ? { rateLimit: LEGACY_LIMITS } : {}),
  });
  const zones: Record<string, string> = {};
  for (const name of values.zone) {
    const id = double.createZone(name);
    zones[name] = id;
  }
  process.stdout.write(`${JSON.stringify({ endpoint: double.endpoint, zones })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await double.stop();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
