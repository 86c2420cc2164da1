// SIGTERM as systemd or the container runtime sends it, to the real entry point in its own process
// (issue #10 item 15): health turns critical at once while plays are still served, in-flight
// requests finish after the node stops accepting, and a request that never finishes cannot keep
// the process alive past shutdown.drainMs + shutdown.timeoutMs.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { GiveUp, refusesConnections, waitFor } from '../../testkit/processes.ts';
import { startStApiProcess, type StApiProcess } from './st-api-process.ts';

const PLAY_BODY = JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' });
/** Long enough that a slow request is cut by the shutdown, not by the request timeout. */
const PATIENT_HTTP = { headersTimeoutMs: 30_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5000 };

let node: StApiProcess | undefined;
afterEach(async () => {
  await node?.kill();
  node = undefined;
});

/** A play whose headers and first half of the body are sent; `finish()` sends the rest. */
async function playInFlight(target: StApiProcess): Promise<{ socket: Socket; received(): string; finish(): void }> {
  const socket = connect(target.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const half = Math.floor(PLAY_BODY.length / 2);
  socket.write(
    `POST /v1/playback-urls HTTP/1.1\r\nHost: st-api\r\nAuthorization: Bearer ${target.demo.tokenFor('demo-user', 600)}\r\nContent-Type: application/json\r\nContent-Length: ${PLAY_BODY.length}\r\n\r\n${PLAY_BODY.slice(0, half)}`,
  );
  return { socket, received: () => received, finish: () => socket.write(PLAY_BODY.slice(half)) };
}

/** The exit, or a failure if the process is still running after `limitMs`. */
async function exitWithin(target: StApiProcess, limitMs: number): Promise<Awaited<StApiProcess['exited']>> {
  let timer: NodeJS.Timeout | undefined;
  const tooLate = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`st-api still running ${limitMs} ms after SIGTERM:\n${target.output()}`)), limitMs);
  });
  try {
    return await Promise.race([target.exited, tooLate]);
  } finally {
    clearTimeout(timer);
  }
}

describe('when st-api receives SIGTERM', () => {
  it('then /health/deep is critical while plays are still served, an in-flight play finishes after it stops accepting, and it exits 0', async () => {
    node = await startStApiProcess({ shutdown: { drainMs: 4000, timeoutMs: 20_000 }, http: PATIENT_HTTP });
    const inFlight = await playInFlight(node);

    const target = node;
    let exited = false;
    void target.exited.then(() => (exited = true));
    target.child.kill('SIGTERM');
    const health = await waitFor(
      async () => {
        // A node that died on the signal instead of draining is a finding of its own: say so, with its output.
        if (exited) throw new GiveUp(`st-api exited on SIGTERM instead of draining:\n${target.output()}`);
        try {
          const response = await fetch(`${target.baseUrl}/health/deep`, { signal: AbortSignal.timeout(2000) });
          const body = await response.text();
          return response.status === 503 ? body : undefined;
        } catch (error) {
          // fetch says only "fetch failed"; the cause (ECONNREFUSED, ECONNRESET…) is what tells the story.
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          throw new Error(`fetch failed (${cause?.code ?? cause?.message ?? 'no cause'}); st-api said:\n${target.output().slice(-1500)}`, {
            cause: error,
          });
        }
      },
      { timeoutMs: 3000, intervalMs: 50, what: '/health/deep to turn critical' },
    );
    assert.match(health, /^fail node=draining /);

    // Consul needs drainMs to notice and the watcher to pull the node from DNS: plays keep working.
    const play = await fetch(`${node.baseUrl}/v1/playback-urls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.demo.tokenFor('demo-user', 600)}`, 'content-type': 'application/json', connection: 'close' },
      body: PLAY_BODY,
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(play.status, 200, 'a play during the drain');

    await waitFor(() => refusesConnections(node?.port ?? 0), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'st-api to stop accepting connections',
    });
    assert.equal(inFlight.received(), '', 'the in-flight play is still waiting for its body');
    inFlight.finish();
    const exit = await exitWithin(node, 30_000);
    assert.match(inFlight.received(), /^HTTP\/1\.1 200 /, 'the in-flight play is answered');
    assert.equal(exit.code, 0, node.output());
    assert.match(node.output(), /"msg":"stopped"/);
  });

  it('then a request that never finishes does not keep it alive: it exits 1 once drainMs + timeoutMs have passed', async () => {
    const drainMs = 500;
    const timeoutMs = 1000;
    node = await startStApiProcess({ shutdown: { drainMs, timeoutMs }, http: PATIENT_HTTP });
    const stuck = await playInFlight(node);

    const signalledAt = Date.now();
    node.child.kill('SIGTERM');
    const exit = await exitWithin(node, drainMs + timeoutMs + 15_000);
    const tookMs = exit.at - signalledAt;
    assert.equal(exit.code, 1, node.output());
    assert.match(node.output(), /shutdown timed out/);
    // Timers never fire early, so the lower bound is exact; the upper one leaves a busy machine room.
    assert.ok(tookMs >= drainMs + timeoutMs, `exited after ${tookMs} ms`);
    assert.ok(tookMs < drainMs + timeoutMs + 15_000, `exited after ${tookMs} ms`);
    assert.doesNotMatch(stuck.received(), /^HTTP\/1\.1 200 /);
  });
});
