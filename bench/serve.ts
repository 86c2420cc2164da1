// What the bench's child servers share: say which port they listen on, and stop on a signal.
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';

/**
 * Once `server` listens, writes `{"msg":"<what> listening","port":…}` on stdout (the parent reads the port
 * from it), then on SIGTERM or SIGINT closes it, lets `dropConnections` end the open ones, and exits 0
 * (1 if that takes longer than `graceMs`).
 */
export async function announceAndStopOnSignal<S extends Server>(
  server: S,
  what: string,
  options: { dropConnections: (server: S) => void; graceMs: number },
): Promise<void> {
  await once(server, 'listening');
  process.stdout.write(`${JSON.stringify({ msg: `${what} listening`, port: (server.address() as AddressInfo).port })}\n`);
  const stop = (): void => {
    server.close(() => process.exit(0));
    options.dropConnections(server);
    setTimeout(() => process.exit(1), options.graceMs).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
