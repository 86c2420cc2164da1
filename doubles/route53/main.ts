// Standalone Route53 double for manual runs and other programs' tests:
//   npm run double:route53 -- [--port N] [--zone play.example.com]… [--insync-delay-ms N] [--no-rate-limit | --legacy-rate-limit]
// Prints one JSON line {"endpoint": …, "zones": {name: id}} and runs until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { LEGACY_LIMITS, startRoute53Double } from './server.ts';

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
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`double:route53: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
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
