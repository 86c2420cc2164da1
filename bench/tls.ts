// The TLS parts of the playback bench that are not a play load: what one new TLS connection costs
// (full handshakes, no session resumption) with each kind of certificate key, and HTTP/1.1 against
// HTTP/2 over TLS for the same small POST (h2load, which speaks both).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { startNodeServer, type NodeServer } from '../testkit/node-server.ts';
import { cpuWindow, processCpuSeconds, type Prepared } from './load.ts';
import { overHttps, quietMachine, type ServingFiles } from './steps.ts';

export interface HandshakeResult {
  handshakes: number;
  failures: number;
  perSecond: number;
  /** Server CPU per handshake (from /proc), ms; undefined off Linux. */
  serverCpuMs: number | undefined;
  /** This process's CPU per handshake (the client side), ms. */
  clientCpuMs: number;
  /** As negotiated, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
  negotiated: string;
  /** CPU over the window in % of one core: server, client (this process), other (the rest of the machine). */
  cpu: Record<string, number>;
}

/**
 * New TLS connections to `server` for `seconds` (at most `limit`), `concurrency` at a time: each a full
 * handshake (no session is offered back, so no resumption), closed as soon as it is established. The
 * client does not verify the chain (as autocannon), so its CPU is the key exchange alone.
 */
export async function measureHandshakes(
  server: NodeServer,
  options: { seconds: number; concurrency: number; limit: number },
): Promise<HandshakeResult> {
  const { hostname, port } = new URL(server.baseUrl);
  await quietMachine({ server: server.pid });
  let handshakes = 0;
  let failures = 0;
  let negotiated = '';
  const endCpu = cpuWindow({ server: server.pid }, 'client');
  const cpuBefore = processCpuSeconds(server.pid);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
      socket.once('secureConnect', () => {
        handshakes++;
        negotiated = `${socket.getProtocol() ?? '?'} ${socket.getCipher().standardName}`;
        socket.end();
        resolve();
      });
      socket.once('error', () => {
        failures++;
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && handshakes + failures < options.limit) await one();
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = processCpuSeconds(server.pid);
  const client = process.cpuUsage(clientBefore);
  const cpu = endCpu();
  return {
    handshakes,
    failures,
    perSecond: handshakes / seconds,
    serverCpuMs:
      cpuBefore === undefined || cpuAfter === undefined || handshakes === 0 ? undefined : ((cpuAfter - cpuBefore) * 1000) / handshakes,
    clientCpuMs: (client.user + client.system) / 1000 / Math.max(1, handshakes),
    negotiated,
    cpu,
  };
}

export interface ProtocolResult {
  protocol: 'h1' | 'h2';
  requestsPerSecond: number;
  meanMs: number;
  succeeded: number;
  failed: number;
  /** Server CPU per request, ms. */
  serverCpuMs: number | undefined;
}

/** The h1/h2 comparison server (bench/protocol-server.ts) with this certificate. */
export async function protocolServer(protocol: 'h1' | 'h2', tls: ServingFiles): Promise<NodeServer> {
  const server = await startNodeServer({
    name: `protocol-server ${protocol}`,
    script: join('bench', 'protocol-server.ts'),
    env: { ...process.env, NODE_ENV: 'production', PROTOCOL: protocol, PROTOCOL_TLS_CERT: tls.certFile, PROTOCOL_TLS_KEY: tls.keyFile },
    listeningMessage: 'protocol-server listening',
  });
  return overHttps(server);
}

/** Is h2load (Debian: nghttp2-client) on the PATH? */
export function h2loadVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('h2load', ['--version'], { timeout: 5000 }, (error, stdout) => resolve(error === null ? stdout.trim() : undefined));
  });
}

/**
 * h2load against `server` (ALPN h2, or http/1.1 with --h1): `connections` connections, one request
 * in flight on each (-m 1, as a player sends), a warm-up, then `seconds` measured.
 */
export async function runH2load(
  server: NodeServer,
  protocol: 'h1' | 'h2',
  request: Prepared,
  options: { dir: string; connections: number; warmupSeconds: number; seconds: number },
): Promise<ProtocolResult> {
  const bodyFile = join(options.dir, 'h2load-body.json');
  writeFileSync(bodyFile, request.body);
  const args = [
    ...(protocol === 'h1' ? ['--h1'] : []),
    '-c',
    String(options.connections),
    '-m',
    '1',
    '-t',
    '1',
    '--warm-up-time',
    `${options.warmupSeconds}s`,
    '-D',
    `${options.seconds}s`,
    '-d',
    bodyFile,
    '-H',
    'content-type: application/json',
    '-H',
    `authorization: ${request.authorization}`,
    `${server.baseUrl}/v1/playback-urls`,
  ];
  await quietMachine({ server: server.pid });
  const cpuStarted = { at: 0, cpu: undefined as number | undefined };
  // The measured window starts after the warm-up; sample the server's CPU then.
  const sampler = setTimeout(
    () => {
      cpuStarted.at = performance.now();
      cpuStarted.cpu = processCpuSeconds(server.pid);
    },
    options.warmupSeconds * 1000 + 100,
  );
  const output = await new Promise<string>((resolve, reject) => {
    execFile('h2load', args, { timeout: (options.warmupSeconds + options.seconds + 30) * 1000 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`h2load failed: ${error.message}\n${stderr}\n${stdout}`)),
    );
  }).finally(() => clearTimeout(sampler));
  const cpuEnded = processCpuSeconds(server.pid);
  const finished = /finished in [0-9.]+m?s, ([0-9.]+) req\/s/.exec(output);
  const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(output);
  const time = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(output);
  if (finished === null || requests === null || time === null) throw new Error(`cannot read h2load's output:\n${output}`);
  const requestsPerSecond = Number(finished[1]);
  const meanText = time[1] ?? '';
  const meanMs = meanText.endsWith('us')
    ? Number.parseFloat(meanText) / 1000
    : meanText.endsWith('ms')
      ? Number.parseFloat(meanText)
      : Number.parseFloat(meanText) * 1000;
  const cpuSeconds = cpuStarted.cpu === undefined || cpuEnded === undefined ? undefined : cpuEnded - cpuStarted.cpu;
  return {
    protocol,
    requestsPerSecond,
    meanMs,
    // h2load's own counts; its "status codes" line can fall a few short of "succeeded" (requests cut at the end of -D).
    succeeded: Number(requests[1]),
    failed: Number(requests[2]) + Number(requests[3]),
    serverCpuMs:
      cpuSeconds === undefined || requestsPerSecond === 0 ? undefined : (cpuSeconds * 1000) / (requestsPerSecond * options.seconds),
  };
}
