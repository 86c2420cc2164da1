// The image as an operator runs it: built from deploy/Dockerfile by podman (Debian's; no Docker
// engine here) and run with only a published port, as the Dockerfile's header says. The embedded
// demo must answer on the published port, plays must be signed, the process must not be root, and
// `podman stop` must drain and exit 0.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildImage, podman } from '../../testkit/image.ts';
import { freePort, waitFor } from '../../testkit/processes.ts';

const tag = `localhost/st-api:test-${process.pid}`;
const container = `st-api-test-${process.pid}`;
after(async () => {
  await podman(['rm', '-f', '--ignore', container]).catch(() => undefined);
  await podman(['rmi', '-f', '--ignore', tag]).catch(() => undefined);
});

describe('the image (deploy/Dockerfile, built and run by podman)', () => {
  it(
    'when run with -p and no configuration, then the demo answers on the published port as a non-root user, plays are signed, and stop drains with exit 0',
    { timeout: 30 * 60_000 },
    async () => {
      await buildImage(tag);
      const port = await freePort();
      await podman(['run', '-d', '--name', container, '-p', `127.0.0.1:${port}:8080`, tag]);
      const base = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => {
          const response = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
          return response?.status === 200 ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'the container answering /health/live on the published port' },
      );

      const logs = await podman(['logs', container]);
      const token = /-H 'Authorization: Bearer (\S+)'/.exec(logs)?.[1];
      assert.ok(token !== undefined, `the demo prints a token: ${logs.slice(-2000)}`);
      const play = await fetch(`${base}/v1/playback-urls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' }),
      });
      const body = (await play.json()) as { url?: string };
      assert.equal(play.status, 200, JSON.stringify(body));
      assert.match(body.url ?? '', /^https:\/\//);
      assert.equal((await podman(['exec', container, 'node', '-e', 'process.stdout.write(String(process.getuid()))'])).trim(), '1000');

      await podman(['stop', '-t', '30', container], 60_000);
      assert.equal((await podman(['inspect', '--format', '{{.State.ExitCode}}', container])).trim(), '0');
      assert.match(await podman(['logs', container]), /"msg":"stopped"/);
    },
  );
});
