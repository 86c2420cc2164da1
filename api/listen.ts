// Where st-api listens: the environment's overrides of listen.host/port, and a bind failure told as
// one sentence with an exit code instead of a stack trace.
import { ConfigError } from './config.ts';

/** sysexits.h EX_UNAVAILABLE: the address may free itself (systemd's Restart=on-failure retries). */
export const EXIT_UNAVAILABLE = 69;
/** sysexits.h EX_CONFIG: restarting cannot fix it (st-api.service: RestartPreventExitStatus=78). */
export const EXIT_CONFIG = 78;

const PORT_TEXT = /^\d{1,5}$/;

/**
 * ST_API_HOST and ST_API_PORT override listen.host and listen.port; PORT (the convention of Heroku,
 * Cloud Run, Docker images) is honoured too, and ST_API_PORT wins when both are set. An empty value
 * counts as unset, so `-e ST_API_HOST=` gives the configuration's host back. Other listen keys are kept.
 */
export function listenFromEnv<Listen extends { host: string; port: number }>(listen: Listen, env: NodeJS.ProcessEnv): Listen {
  const host = nonEmpty(env['ST_API_HOST']);
  const portName = nonEmpty(env['ST_API_PORT']) === undefined ? 'PORT' : 'ST_API_PORT';
  const portText = nonEmpty(env[portName]);
  const port = portText === undefined ? listen.port : parsePort(portName, portText);
  return { ...listen, host: host ?? listen.host, port };
}

export interface AdminListen {
  host: string;
  port: number;
}

/**
 * ST_API_ADMIN_PORT and ST_API_ADMIN_HOST override admin.port and admin.host; the port alone turns
 * the admin listener on (on 127.0.0.1 unless a host is given). Empty values count as unset.
 */
export function adminFromEnv(admin: AdminListen | undefined, env: NodeJS.ProcessEnv): AdminListen | undefined {
  const host = nonEmpty(env['ST_API_ADMIN_HOST']);
  const portText = nonEmpty(env['ST_API_ADMIN_PORT']);
  const port = portText === undefined ? admin?.port : parsePort('ST_API_ADMIN_PORT', portText);
  if (port === undefined) {
    if (host !== undefined) throw new ConfigError(['ST_API_ADMIN_HOST: needs admin.port in the configuration or ST_API_ADMIN_PORT']);
    return undefined;
  }
  return { host: host ?? admin?.host ?? '127.0.0.1', port };
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::']);

/**
 * The admin listener on the public listener's port and address (or either on a wildcard address)
 * would fail with EADDRINUSE, which exits 69 and has systemd retry forever: say it is configuration.
 */
export function adminClash(listen: AdminListen, admin: AdminListen | undefined): string | undefined {
  if (admin === undefined || admin.port === 0 || admin.port !== listen.port) return undefined;
  const overlap = admin.host === listen.host || WILDCARD_HOSTS.has(admin.host) || WILDCARD_HOSTS.has(listen.host);
  return overlap ? `admin.port: must differ from listen.port (${listen.port}) on the same address` : undefined;
}

function parsePort(name: string, text: string): number {
  const port = Number(text);
  // The value is not echoed: the configuration's rule for every value.
  if (!PORT_TEXT.test(text) || port > 65535) throw new ConfigError([`${name}: must be a port number from 0 to 65535`]);
  return port;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * A failed listen() as a sentence naming host:port, and its exit code. A port in use (the previous
 * process still draining, a blue/green overlap), an address not yet on the machine at boot, or a
 * host name not yet resolvable can all clear by themselves: 69, so systemd retries. A port below
 * 1024 without the capability to bind it never does: 78.
 */
export function describeListenError(error: unknown, host: string, port: number): { message: string; exitCode: number } {
  const code = (error as { code?: unknown } | null)?.code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return { message: `cannot listen on ${where}: the port is in use by another process (EADDRINUSE)`, exitCode: EXIT_UNAVAILABLE };
    case 'EADDRNOTAVAIL':
      return {
        message: `cannot listen on ${where}: no network interface of this machine has that address (EADDRNOTAVAIL)`,
        exitCode: EXIT_UNAVAILABLE,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { message: `cannot listen on ${where}: the host name does not resolve (${code})`, exitCode: EXIT_UNAVAILABLE };
    case 'EACCES':
    case 'EPERM':
      return {
        message: `cannot listen on ${where}: permission denied (${code}); ports below 1024 need root or CAP_NET_BIND_SERVICE`,
        exitCode: EXIT_CONFIG,
      };
    default:
      return {
        message: `cannot listen on ${where}: ${typeof code === 'string' ? code : error instanceof Error ? error.message : String(error)}`,
        exitCode: EXIT_UNAVAILABLE,
      };
  }
}

/** Where to point a human at: a wildcard address is reached through loopback on this machine. */
export function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
