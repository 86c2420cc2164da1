// withTimeout (common/with-timeout.ts): the one bound on a wait that every program uses.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { describe, it } from 'node:test';
import { withTimeout } from '../../common/with-timeout.ts';

class Late extends Error {}
const late = (ms: number) => new Late(`not within ${ms} ms`);
/** Answers every write at once and prints its port. */
const PEER = `const server = require('node:net').createServer((socket) => socket.on('data', () => socket.write('pong')));
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port)));`;

describe('withTimeout', () => {
  it('when the work settles in time, then its value or its own error comes through', async () => {
    assert.equal(await withTimeout(Promise.resolve('value'), 50, late), 'value');
    await assert.rejects(withTimeout(Promise.reject(new Error('own error')), 50, late), /own error/);
  });

  it("when the work never settles, then the caller's error comes after the bound, told the bound", async () => {
    const started = Date.now();
    await assert.rejects(
      withTimeout(new Promise(() => undefined), 50, late),
      (error: unknown) => error instanceof Late && error.message === 'not within 50 ms',
    );
    assert.ok(Date.now() - started >= 45, 'gave up before its bound');
  });

  it('when a reply reached the socket while this process was busy past the bound, then the reply wins', async () => {
    // Node runs expired timers before it reads sockets: a verdict taken in the timer itself would
    // call a peer slow that had answered in time. The peer is another process, so it answers while this one is busy.
    const peer = spawn(process.execPath, ['-e', PEER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [port] = (await once(peer.stdout, 'data')) as [Buffer];
    const socket = createConnection(Number(port.toString()), '127.0.0.1');
    await once(socket, 'connect');
    try {
      let timedOut = 0;
      for (let i = 0; i < 10; i += 1) {
        const reply = withTimeout(once(socket, 'data'), 100, late);
        socket.write('ping');
        const until = Date.now() + 300;
        while (Date.now() < until) {
          /* busy: this process stalls while the reply arrives */
        }
        await reply.catch((error: unknown) => {
          if (error instanceof Late) timedOut += 1;
          else throw error;
        });
      }
      assert.equal(timedOut, 0, `${timedOut} of 10 replies that had arrived were judged late`);
    } finally {
      socket.destroy();
      peer.kill();
    }
  });
});
