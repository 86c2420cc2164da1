// Reading the truth: ROLE of an instance and each Sentinel's current master address.
import { endpointKey, type Endpoint } from './args.ts';
import type { Role, SentinelAnswer } from './decide.ts';
import { command, ReplyError, type Credentials, type TlsOptions } from './resp.ts';

export interface ProbeOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly auth?: Credentials | undefined;
  readonly tls?: TlsOptions | undefined;
}

export async function readRole(instance: Endpoint, options: ProbeOptions): Promise<Role> {
  let reply;
  try {
    reply = await command(instance.ip, instance.port, ['ROLE'], options);
  } catch (error) {
    if (options.signal.aborted) throw error;
    return { kind: 'unreachable', error: error instanceof Error ? error.message : String(error) };
  }
  // -LOADING, -NOAUTH…: up, but not something to send clients to.
  if (reply instanceof ReplyError) return { kind: 'unreachable', error: reply.message.slice(0, 200) };
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') return { kind: 'unreachable', error: 'ROLE reply is not an array' };
  if (reply[0] === 'master') return { kind: 'master' };
  if (reply[0] === 'slave') {
    const [, host, port, link] = reply;
    if (typeof host !== 'string' || typeof port !== 'number' || typeof link !== 'string')
      return { kind: 'unreachable', error: 'ROLE slave reply malformed' };
    return { kind: 'replica', master: endpointKey({ ip: host, port }), link };
  }
  return { kind: 'other', role: reply[0].slice(0, 32) };
}

export async function askSentinel(sentinel: Endpoint, masterName: string, options: ProbeOptions): Promise<SentinelAnswer> {
  const name = endpointKey(sentinel);
  try {
    const reply = await command(sentinel.ip, sentinel.port, ['SENTINEL', 'get-master-addr-by-name', masterName], options);
    if (reply === null) return { sentinel: name, master: null };
    if (Array.isArray(reply) && typeof reply[0] === 'string' && typeof reply[1] === 'string' && /^\d{1,5}$/.test(reply[1])) {
      return { sentinel: name, master: endpointKey({ ip: reply[0], port: Number(reply[1]) }) };
    }
    return { sentinel: name, master: undefined, error: reply instanceof ReplyError ? reply.message.slice(0, 200) : 'unexpected reply' };
  } catch (error) {
    if (options.signal.aborted) throw error;
    return { sentinel: name, master: undefined, error: error instanceof Error ? error.message.slice(0, 200) : 'error' };
  }
}
