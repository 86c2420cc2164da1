// One command, one connection, one reply, with a hard timeout. A client library would reconnect,
// queue and retry behind our back; a hook needs "answered within N ms, or did not".
//
// Kept next to ioredis (the API's client) because ioredis costs every hook process start CPU (issue
// #11), measured by `npx tsx bench/hooks-redis-client.bench.ts` (both clients in one run, one
// throwaway redis-server with requirepass; 2-core machine during a CI run, load average 7 to 15;
// Node 20.20, ioredis 6.0.0; three runs, medians of 40 starts and 400 runs, CPU = user + system):
//   start (a new process per hook call, a dozen or more per failover, one per reconcile tick):
//     the hooks' bundle (--help) 103-106 ms CPU, 125-151 ms wall, 954 KB; with ioredis loaded
//     127-133 ms CPU (+24-27 ms, +23-25 %), 159-189 ms wall, 1,401 KB. One AUTH + ROLE from a tiny
//     bundle: 67-70 ms CPU with this file, 97-100 ms with ioredis (Node alone 61-63 ms).
//   Redis work, in process: one connection (AUTH, ROLE, close) 0.22-0.23 ms CPU here, 0.37-0.38 ms
//     with ioredis; one reading (ROLE and three Sentinels at once) 0.44-0.45 ms against 0.66-0.71 ms.
//   Over TLS (tls in the hooks' config; Node 20.20, EC P-256 test CA, one run at load average 10-14):
//     a start with AUTH + ROLE 82 ms CPU against 69 ms plain (+13 ms: node:tls, loaded only then,
//     the CA file and one handshake); one connection in process 1.9 ms CPU against 0.26 ms.
// Threshold: ioredis would replace this file if it added under 10 % to a hook process's CPU. Wall time
// is not the measure (+34-37 ms against Sentinel's 60 s script limit and a failover of seconds); CPU is,
// on hosts busy with a failover, where bundle.ts already halved the hooks' start for the same reason.
import { createConnection, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errorOfKind } from '../common/cli/errors.ts';

export type Reply = string | number | null | ReplyError | Reply[];

export class ReplyError extends Error {
  override name = 'ReplyError';
}

/**
 * No reply: refused, reset, closed, timed out, or the run's deadline. A socket error's message is its
 * code alone (ECONNREFUSED): it is what a role check's output shows for an unreachable instance.
 */
export class NoReplyError extends errorOfKind('NoReplyError', 'unavailable') {}

/** A reply that is not RESP, or larger than any answer to what we ask. */
export class ProtocolError extends errorOfKind('ProtocolError', 'bad-input') {}

/** Incomplete input: wait for more bytes. */
const MORE = Symbol('more');

function parse(buffer: Buffer, start: number, depth: number): { value: Reply; end: number } | typeof MORE {
  if (depth > 8) throw new ProtocolError('RESP reply nested too deeply');
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd < 0) return MORE;
  const type = String.fromCharCode(buffer[start] ?? 0);
  const line = buffer.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new ReplyError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return MORE;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      if (count > 10_000) throw new ProtocolError(`RESP array of ${count} elements`);
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, at, depth + 1);
        if (item === MORE) return MORE;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new ProtocolError(`not a RESP reply (starts with ${JSON.stringify(type)})`);
  }
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

const MAX_REPLY_BYTES = 1024 * 1024;

/** Redis ACL credentials: AUTH <username> <password>, or AUTH <password> for requirepass. */
export interface Credentials {
  readonly username?: string | undefined;
  readonly password: string;
}

/** TLS to a Redis or Sentinel: PEM texts, and the name its certificate must carry. */
export interface TlsOptions {
  readonly ca: string;
  /**
   * Checked in the server's certificate. The hooks connect to the addresses Sentinel hands out, so
   * this is usually the service name the certificates carry; absent = the address itself (IP SAN).
   */
  readonly servername?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

export interface CommandOptions {
  readonly timeoutMs: number;
  /** TLS 1.2+ with the server's certificate checked; absent = plain TCP. */
  readonly tls?: TlsOptions | undefined;
  readonly signal?: AbortSignal;
  /** Sent as AUTH in the same write, before the command. */
  readonly auth?: Credentials | undefined;
}

/**
 * Sends one command (after AUTH when credentials are given) and resolves with its reply. An error
 * reply resolves as a ReplyError; a refused AUTH resolves as its own ReplyError (WRONGPASS…), never
 * echoing what was sent.
 */
export function command(host: string, port: number, args: readonly string[], options: CommandOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // The run's deadline: no reply in time, so transient (exit 1) and Sentinel runs the hook again.
    const deadline = (): NoReplyError => new NoReplyError(`no reply from ${host}:${port}: the run's deadline was reached`);
    if (options.signal?.aborted === true) {
      reject(deadline());
      return;
    }
    const tls = options.tls;
    const socket: Socket | TLSSocket =
      tls === undefined
        ? createConnection({ host, port })
        : // Loaded only when asked for: plain hooks do not pay for node:tls at start-up.
          process.getBuiltinModule('node:tls').connect({
            host,
            port,
            ca: tls.ca,
            minVersion: 'TLSv1.2',
            ...(tls.servername === undefined ? {} : { servername: tls.servername }),
            ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
          });
    let chunks = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | null, value?: Reply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error === null) resolve(value ?? null);
      else reject(error);
    };
    const onAbort = (): void => finish(deadline());
    const timer = setTimeout(
      () => finish(new NoReplyError(`no reply from ${host}:${port} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error: NodeJS.ErrnoException) => finish(new NoReplyError(error.code ?? error.message, { cause: error })));
    socket.once('close', () => finish(new NoReplyError(`${host}:${port} closed the connection`)));
    const auth = options.auth;
    const authArgs = auth === undefined ? [] : ['AUTH', ...(auth.username === undefined ? [] : [auth.username]), auth.password];
    // Over TLS nothing is sent before the server's certificate is verified.
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () =>
      socket.write((authArgs.length > 0 ? encode(authArgs) : '') + encode(args)),
    );
    socket.on('data', (chunk: Buffer) => {
      chunks = Buffer.concat([chunks, chunk]);
      if (chunks.length > MAX_REPLY_BYTES) {
        finish(new ProtocolError(`reply from ${host}:${port} exceeds ${MAX_REPLY_BYTES} bytes`));
        return;
      }
      try {
        let parsed = parse(chunks, 0, 0);
        if (parsed !== MORE && authArgs.length > 0) {
          // AUTH's own reply first: an error there is the answer (the command's would only say NOAUTH).
          if (parsed.value instanceof ReplyError) {
            finish(null, parsed.value);
            return;
          }
          parsed = parse(chunks, parsed.end, 0);
        }
        if (parsed !== MORE) finish(null, parsed.value);
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
