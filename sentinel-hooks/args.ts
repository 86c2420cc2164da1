// Sentinel's argv for the two hooks, parsed strictly: a hook that guesses at its input could
// write a wrong master into DNS, so anything unexpected is a permanent error.
import { isIP } from 'node:net';
import { errorOfKind } from '../common/cli/errors.ts';
import { printableJson } from '../common/printable.ts';

export class ArgumentError extends errorOfKind('ArgumentError', 'bad-input') {}

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface ClientReconfigArgs {
  readonly masterName: string;
  readonly role: 'leader' | 'observer';
  /** Always "start" in Redis 2.8…7.x; kept for the log, never acted on. */
  readonly state: string;
  readonly from: Endpoint;
  readonly to: Endpoint;
}

export interface NotificationArgs {
  readonly eventType: string;
  readonly description: string;
}

/** Sentinel accepts any name without spaces; ours also end up in Consul KV keys and Meta. */
export const MASTER_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function endpointKey(endpoint: Endpoint): string {
  return endpoint.ip.includes(':') ? `[${endpoint.ip}]:${endpoint.port}` : `${endpoint.ip}:${endpoint.port}`;
}

export function parsePort(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d{1,5}$/.test(text)) throw new ArgumentError(`${what} must be a port number, got ${show(text)}`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new ArgumentError(`${what} must be 1-65535, got ${port}`);
  return port;
}

function parseIp(text: string | undefined, what: string): string {
  if (text === undefined || isIP(text) === 0) {
    // With `sentinel announce-hostnames yes` Sentinel passes names; we compare addresses, so refuse.
    throw new ArgumentError(`${what} must be an IP address (set "sentinel announce-hostnames no"), got ${show(text)}`);
  }
  return text;
}

function show(text: string | undefined): string {
  return text === undefined ? 'nothing' : printableJson(text.slice(0, 80));
}

/** `<master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>` (sentinel.conf, client-reconfig-script). */
export function parseClientReconfigArgs(argv: readonly string[]): ClientReconfigArgs {
  if (argv.length !== 7) {
    throw new ArgumentError(
      `expected 7 arguments <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>, got ${argv.length}`,
    );
  }
  const [masterName, role, state, fromIp, fromPort, toIp, toPort] = argv;
  if (masterName === undefined || !MASTER_NAME.test(masterName))
    throw new ArgumentError(`master-name ${show(masterName)} is not a valid name`);
  if (role !== 'leader' && role !== 'observer') throw new ArgumentError(`role must be leader or observer, got ${show(role)}`);
  // 7.0 passes "start" only; older docs said "failover". Accept any word, act on neither.
  if (state === undefined || !/^[a-z_-]{1,32}$/.test(state)) throw new ArgumentError(`state ${show(state)} is not a word`);
  const from = { ip: parseIp(fromIp, 'from-ip'), port: parsePort(fromPort, 'from-port') };
  const to = { ip: parseIp(toIp, 'to-ip'), port: parsePort(toPort, 'to-port') };
  if (endpointKey(from) === endpointKey(to)) throw new ArgumentError(`from and to are the same instance ${endpointKey(to)}`);
  return { masterName, role, state, from, to };
}

const MAX_DESCRIPTION = 1024;

/** `<event-type> <event-description>` (sentinel.conf, notification-script). */
export function parseNotificationArgs(argv: readonly string[]): NotificationArgs {
  if (argv.length !== 2) throw new ArgumentError(`expected 2 arguments <event-type> <event-description>, got ${argv.length}`);
  const [eventType, description] = argv;
  if (eventType === undefined || !/^[+-][a-z-]{1,64}$/.test(eventType))
    throw new ArgumentError(`event-type ${show(eventType)} is not a Sentinel event`);
  if (
    description === undefined ||
    description.length > MAX_DESCRIPTION ||
    [...description].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
  ) {
    throw new ArgumentError(`event-description must be printable text of at most ${MAX_DESCRIPTION} characters`);
  }
  return { eventType, description };
}

/**
 * The master an event concerns: `%@` is `<type> <name> <ip> <port> [@ <master-name> <ip> <port>]`
 * (sentinel.c sentinelEvent); events such as +new-epoch carry no instance at all.
 */
export function eventMasterName(description: string): string | null {
  const words = description.split(' ');
  const at = words.indexOf('@');
  if (at >= 0) return words[at + 1] ?? null;
  if (words[0] === 'master' && words[1] !== undefined) return words[1];
  return null;
}
