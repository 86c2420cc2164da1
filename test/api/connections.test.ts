// Slow and silent clients cannot hold st-api's connections (issue #10 item 9). The real entry point
// runs with small configured limits; each test asserts that a connection is closed well within a
// generous multiple of its limit (never a tight wall-clock), and how it was answered.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sleep, waitFor } from '../../testkit/processes.ts';
import { startStApiProcess, type StApiProcess } from './st-api-process.ts';

const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1000;
const KEEP_ALIVE_TIMEOUT_MS = 1000;
/** "Closed within a generous bound": five times the configured limit, room for a busy machine. */
const BOUND = 5;

let node: StApiProcess;
let capped: StApiProcess;

before(async () => {
  [node, capped] = await Promise.all([
    startStApiProcess({
      http: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS },
    }),
    // Default timeouts, so held connections stay open while the cap is tested.
    startStApiProcess({ http: { maxConnections: 2 } }),
  ]);
});

after(async () => {
  await Promise.all([node.kill(), capped.kill()]);
});

interface Conversation {
  socket: Socket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves when the server (or an error) closed the connection, with the time since it was opened. */
  closed: Promise<number>;
}

function open(port: number): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const opened = Date.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('error', () => undefined); // a reset shows as 'close' below
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - opened)));
    socket.once('connect', () => resolve({ socket, received: () => received, closed }));
    socket.once('error', reject);
  });
}

/** Sends `bytes` one at a time, every `everyMs`, until the socket closes (bounded by the byte count). */
async function trickle(socket: Socket, bytes: string, everyMs: number): Promise<void> {
  for (const byte of bytes) {
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(byte);
    await sleep(everyMs);
  }
}

/** The connection's fate, bounded: closed within `limitMs`, or fails the test. */
async function closedWithin(conversation: Conversation, limitMs: number, what: string): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const tooLate = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: still open after ${limitMs} ms; received ${JSON.stringify(conversation.received())}`)),
      limitMs,
    );
  });
  try {
    return await Promise.race([conversation.closed, tooLate]);
  } finally {
    clearTimeout(timer);
    conversation.socket.destroy();
  }
}

/** The head of a play request announcing `contentLength` bytes of JSON, with `authorization` if given. */
function playRequestHead(contentLength: number, authorization?: string): string {
  const auth = authorization === undefined ? '' : `Authorization: ${authorization}\r\n`;
  return `POST /v1/playback-urls HTTP/1.1\r\nHost: st-api\r\n${auth}Content-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`;
}

/**
 * Opens a connection, sends `head` at once and `body` a byte every `everyMs`, and waits (at most
 * `limitMs`, by default the request timeout's bound) for st-api to close it: what it answered, and after how long it closed.
 */
async function trickleUntilClosed(
  head: string,
  body: string,
  everyMs: number,
  what: string,
  limitMs = REQUEST_TIMEOUT_MS * BOUND,
): Promise<{ received: string; closedAfter: number }> {
  const slow = await open(node.port);
  if (head !== '') slow.socket.write(head);
  void trickle(slow.socket, body, everyMs);
  const closedAfter = await closedWithin(slow, limitMs, what);
  return { received: slow.received(), closedAfter };
}

describe('when a client trickles its headers', () => {
  it('then it gets 408 and the connection is closed within the headers timeout (×5)', async () => {
    const headers = 'GET /health/live HTTP/1.1\r\nHost: st-api\r\nX-Slow: ' + 'a'.repeat(200);
    const { received } = await trickleUntilClosed('', headers, 50, 'a connection trickling headers', HEADERS_TIMEOUT_MS * BOUND);
    assert.match(received, /^HTTP\/1\.1 408 /);
  });
});

describe('when a client without a token announces a huge body and trickles it', () => {
  it('then it is refused at once with 413 BODY_TOO_LARGE and the connection is closed, before the request timeout', async () => {
    const { received, closedAfter } = await trickleUntilClosed(
      playRequestHead(999999999),
      '{'.repeat(100),
      200,
      'a connection announcing 999999999 bytes',
    );
    assert.match(received, /^HTTP\/1\.1 413 /);
    assert.match(received, /\r\nConnection: close\r\n/i);
    assert.match(received, /"code":"BODY_TOO_LARGE"/);
    // Closed because it was answered, not because the request timed out.
    assert.ok(closedAfter < REQUEST_TIMEOUT_MS * BOUND, `closed after ${closedAfter} ms`);
  });

  it('then a small body without a token is refused with 401 and the connection closed rather than read', async () => {
    const { received } = await trickleUntilClosed(playRequestHead(100), '{'.repeat(100), 200, 'an unauthenticated trickled body');
    assert.match(received, /^HTTP\/1\.1 401 /);
    assert.match(received, /\r\nConnection: close\r\n/i);
  });
});

describe('when an authenticated client trickles a 4 KB body', () => {
  it('then it gets 408 and the connection is closed within the request timeout (×5)', async () => {
    const body = JSON.stringify({ contentId: 'tt-demo-0001', device: 'web', pad: 'x'.repeat(4000) }).slice(0, 4000);
    const head = playRequestHead(Buffer.byteLength(body), `Bearer ${node.demo.tokenFor('demo-user', 600)}`);
    const { received } = await trickleUntilClosed(head, body, 50, 'an authenticated trickled body');
    assert.match(received, /^HTTP\/1\.1 408 /);
  });
});

describe('when a client keeps a connection idle after its request', () => {
  it('then the answer announces the keep-alive timeout and the idle connection is closed within it (×5)', async () => {
    const idle = await open(node.port);
    idle.socket.write('GET /health/live HTTP/1.1\r\nHost: st-api\r\n\r\n');
    await waitFor(() => idle.received().includes('\r\n\r\n'), { timeoutMs: 5000, intervalMs: 10, what: 'the answer' });
    assert.match(idle.received(), /^HTTP\/1\.1 200 /);
    assert.match(idle.received(), new RegExp(`\\r\\nKeep-Alive: timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}\\r\\n`, 'i'));
    await closedWithin(idle, KEEP_ALIVE_TIMEOUT_MS * BOUND, 'an idle keep-alive connection');
  });

  it('then a well-behaved play on the same node is still served', async () => {
    const response = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.demo.tokenFor('demo-user', 600)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
  });
});

describe('when more clients connect than maxConnections', () => {
  it('then the connection over the cap is closed without an answer, and a place freed is served again', async () => {
    const held = await Promise.all([open(capped.port), open(capped.port)]);
    for (const conversation of held) {
      conversation.socket.write('GET /health/live HTTP/1.1\r\nHost: st-api\r\n\r\n');
      await waitFor(() => conversation.received().startsWith('HTTP/1.1 200 '), {
        timeoutMs: 5000,
        intervalMs: 10,
        what: 'a held connection to be served',
      });
    }
    const over = await open(capped.port);
    over.socket.write('GET /health/live HTTP/1.1\r\nHost: st-api\r\n\r\n');
    await closedWithin(over, 5000, 'the connection over the cap');
    assert.equal(over.received(), '', 'no answer over the cap');

    held[0]?.socket.destroy();
    await held[0]?.closed;
    // The server counts the freed place once it has seen the close: poll, bounded.
    const answered = await waitFor(
      async () => {
        const next = await open(capped.port);
        next.socket.write('GET /health/live HTTP/1.1\r\nHost: st-api\r\n\r\n');
        const served = await Promise.race([
          waitFor(() => next.received().startsWith('HTTP/1.1 200 '), { timeoutMs: 1000, intervalMs: 10, what: 'an answer' }).catch(
            () => false,
          ),
          next.closed.then(() => false),
        ]);
        next.socket.destroy();
        return served;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'a connection to be served after one was freed' },
    );
    assert.equal(answered, true);
    held[1]?.socket.destroy();
  });
});
