// Standalone Consul double: `npm run double:consul -- [--port N] [--dns-port N]`.
// Prints one line with the HTTP address and DNS port, then serves until
// SIGINT/SIGTERM, so any Consul-speaking tool (the `consul` npm client, curl,
// dig -p) can be pointed at it. Output-only check changes sync at once here,
// since an operator poking at it by hand would not expect a 5-minute lag.
import { parseArgs } from 'node:util';
import { startConsulDouble } from './double.ts';

function portOption(value: string | undefined, name: string): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`consul double: --${name} must be a port number, not "${value}"\n`);
    process.exit(2);
  }
  return port;
}

const USAGE = `Usage: npm run double:consul -- [--port N] [--dns-port N]

Starts the Consul double (HTTP API and DNS on 127.0.0.1), prints one line with its addresses, and
serves until SIGINT or SIGTERM. Port 0 or none: a free port.

Options:
  --port N       HTTP API port
  --dns-port N   DNS port (UDP)
  -h, --help     this text
`;

let values: { port?: string | undefined; 'dns-port'?: string | undefined; help?: boolean | undefined };
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string' },
      'dns-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  process.stderr.write(`consul double: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const consul = await startConsulDouble({
  port: portOption(values.port, 'port'),
  dnsPort: portOption(values['dns-port'], 'dns-port'),
  checkUpdateIntervalMs: 0,
});
process.stdout.write(`consul double: http ${consul.httpAddr} dns 127.0.0.1:${consul.dnsPort} (node ${consul.serverNode}, dc1)\n`);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`consul double: ${signal}, stopping\n`);
  const forced = setTimeout(() => process.exit(1), 10_000);
  forced.unref();
  await consul.stop();
  process.exit(0);
}
process.on('SIGINT', (signal) => void shutdown(signal));
process.on('SIGTERM', (signal) => void shutdown(signal));
