// Standalone Consul double: `npm run double:consul -- [--port N] [--dns-port N]
// [--tls-cert FILE --tls-key FILE [--https-port N] [--tls-ca FILE] [--verify-incoming]]`.
// Prints one line with the HTTP (and HTTPS) address and DNS port, then serves until
// SIGINT/SIGTERM, so any Consul-speaking tool (the `consul` npm client, curl,
// dig -p) can be pointed at it. Output-only check changes sync at once here,
// since an operator poking at it by hand would not expect a 5-minute lag.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startConsulDouble, type ConsulDoubleTls } from './double.ts';

function usageError(message: string): never {
  process.stderr.write(`consul double: ${message}\n`);
  process.exit(2);
}

function portOption(value: string | undefined, name: string): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    usageError(`--${name} must be a port number, not "${value}"`);
  }
  return port;
}

const USAGE = `Usage: npm run double:consul -- [--port N] [--dns-port N]
         [--tls-cert FILE --tls-key FILE [--https-port N] [--tls-ca FILE] [--verify-incoming]]

Starts the Consul double (HTTP API and DNS on 127.0.0.1), prints one line with its addresses, and
serves until SIGINT or SIGTERM. Port 0 or none: a free port.

Options:
  --port N             HTTP API port
  --dns-port N         DNS port (UDP)
  --tls-cert FILE      also serve the API over HTTPS with this certificate chain (PEM) ...
  --tls-key FILE       ... and its key (Consul's tls.https cert_file/key_file)
  --https-port N       HTTPS port (with --tls-cert)
  --tls-ca FILE        the CA client certificates must chain to (Consul's ca_file)
  --verify-incoming    require a client certificate signed by --tls-ca (Consul's verify_incoming)
  -h, --help           this text
`;

const OPTIONS = {
  port: { type: 'string' },
  'dns-port': { type: 'string' },
  'https-port': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'verify-incoming': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'];
try {
  ({ values } = parseArgs({ options: OPTIONS, strict: true }));
} catch (error) {
  process.stderr.write(`consul double: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function pem(option: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return usageError(`--${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read'}`);
  }
}

/** Consul's tls.https: a certificate and key, and with --verify-incoming the CA clients' certificates must chain to. */
function tlsOptions(): ConsulDoubleTls | undefined {
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if (cert === undefined && key === undefined) {
    if (values['tls-ca'] !== undefined || values['verify-incoming'] === true || values['https-port'] !== undefined)
      usageError('--tls-ca, --verify-incoming and --https-port need --tls-cert and --tls-key');
    return undefined;
  }
  if (cert === undefined || key === undefined) usageError('--tls-cert and --tls-key go together');
  if (values['verify-incoming'] === true && values['tls-ca'] === undefined) usageError('--verify-incoming needs --tls-ca');
  return {
    cert: pem('tls-cert', cert),
    key: pem('tls-key', key),
    ...(values['tls-ca'] === undefined ? {} : { ca: pem('tls-ca', values['tls-ca']) }),
    verifyIncoming: values['verify-incoming'] === true,
  };
}

const tls = tlsOptions();

const consul = await startConsulDouble({
  port: portOption(values.port, 'port'),
  dnsPort: portOption(values['dns-port'], 'dns-port'),
  checkUpdateIntervalMs: 0,
  ...(tls === undefined ? {} : { tls, httpsPort: portOption(values['https-port'], 'https-port') }),
});
const https = consul.httpsAddr === undefined ? '' : ` https ${consul.httpsAddr}${tls?.verifyIncoming === true ? ' (verify_incoming)' : ''}`;
process.stdout.write(`consul double: http ${consul.httpAddr}${https} dns 127.0.0.1:${consul.dnsPort} (node ${consul.serverNode}, dc1)\n`);

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
