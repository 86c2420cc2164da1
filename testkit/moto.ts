// A throwaway moto server (Python, preinstalled) for cross-checking the
// Route53 double's wire format. moto is lenient where AWS is strict (see
// ../../../shared/reference/consul-route53.md §8), so it is a second opinion,
// never the authority.
import { join } from 'node:path';
import { LOOPBACK, ManagedServer, makeTempDir, startOnFreePort } from './processes.ts';

export interface MotoServer {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly pid: number;
  /** POST /moto-api/reset: drops every resource moto holds. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 5_000;

async function post(url: string): Promise<Response> {
  return await fetch(url, { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

export async function startMoto(): Promise<MotoServer> {
  const dir = await makeTempDir('moto');
  return await startOnFreePort(
    'moto',
    async (port) => {
      const endpoint = `http://${LOOPBACK}:${port}`;
      const server = new ManagedServer({
        name: `moto_server:${port}`,
        command: 'moto_server',
        args: ['-H', LOOPBACK, '-p', String(port)],
        logFile: join(dir, `moto-${port}.log`),
        cwd: dir,
        // Reset answers only once the Flask app is serving, so it doubles as the readiness probe.
        isReady: async () => (await post(`${endpoint}/moto-api/reset`)).ok,
        readyTimeoutMs: 30_000,
        stopTimeoutMs: 5_000,
      });
      await server.start();
      return {
        endpoint,
        pid: server.pid,
        async reset() {
          const response = await post(`${endpoint}/moto-api/reset`);
          if (!response.ok) throw new Error(`moto reset answered HTTP ${response.status}`);
        },
        stop: () => server.stop(),
      };
    },
    (error) => /Address already in use/i.test(error.log),
  );
}
