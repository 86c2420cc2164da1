// Blue/green, node by node, under load (the procedure in deploy/RUNBOOK.md): exclude → drain →
// upgrade → verify → include. Real st-api processes (SIGTERM drain included), the Consul double
// checking them and running the real watch handler, the Route53 double, and clients that resolve
// through Route53's records with a (scaled-down) TTL. Not one play may fail. The drain itself is
// exercised by what the runbook's drain is for: a straggler that ignores the TTL keeps opening new
// connections to the node across the SIGTERM, and a play still in flight when the node stops
// listening must be answered. Everything runs over HTTPS as production does: the nodes serve a
// certificate for the public name from a test CA, the agents check them with that CA
// (enable_agent_tls_for_checks) under tls_server_name, and the clients verify it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { httpsRequest } from '../../testkit/https-client.ts';
import { freePort, refusesConnections, sleep, waitFor } from '../../testkit/processes.ts';
import { createTestCa } from '../../testkit/tls.ts';
import { publishedNodes, REPO, startWatcherWorld, waitForPublished, watcherCli, WATCHER, type WatcherWorld } from './harness.ts';

const NODES = ['api-node-1', 'api-node-2', 'api-node-3'];
/** Clients cache DNS answers this long: the record TTL, scaled down from 30 s. */
const CLIENT_TTL_MS = 1000;
/** shutdown.drainMs: how long a node keeps accepting after SIGTERM (production: 3 s). */
const DRAIN_MS = 3000;
/** The straggler opens new connections this long after the SIGTERM: well inside the drain. */
const STRAGGLE_MS = 1000;
const PLAY_BODY = JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' });
const demo = embeddedDemo();
const dir = mkdtempSync(join(tmpdir(), 'st-bluegreen-'));
const PUBLIC_NAME = 'play.example.com';
const ca = createTestCa(dir);
/** Every node serves the public name's certificate (DNS round robin sends clients to any of them). */
const serving = ca.server('play', [PUBLIC_NAME]);
let world: WatcherWorld;
const ports = new Map<string, number>();
const processes = new Map<string, ChildProcess>();

const addressOf = (node: string) => `127.0.3.${node.slice(-1)}`;

async function startApi(node: string, version: string): Promise<void> {
  const port = ports.get(node) ?? (await freePort());
  ports.set(node, port);
  const configFile = join(dir, `${node}-${version}.json`);
  writeFileSync(
    configFile,
    JSON.stringify({
      ...demo.rawConfig,
      listen: { host: '127.0.0.1', port, tls: { certFile: serving.certFile, keyFile: serving.keyFile } },
      logLevel: 'warn',
      shutdown: { drainMs: DRAIN_MS, timeoutMs: 5000 },
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'api', 'main.ts')], {
    env: { ...process.env, ST_API_CONFIG: configFile },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  processes.set(node, child);
  await waitFor(
    async () =>
      (await httpsRequest(`https://127.0.0.1:${port}/health/live`, { ca: ca.caPem, servername: PUBLIC_NAME }).catch(() => undefined))
        ?.status === 200
        ? true
        : undefined,
    {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `${node} ${version} to listen`,
    },
  );
}

async function registerInConsul(node: string): Promise<void> {
  let agent: string;
  try {
    agent = world.consul.node(node).agentAddr;
  } catch {
    agent = (await world.consul.addNode(node, addressOf(node))).agentAddr;
  }
  const port = ports.get(node) ?? 0;
  const response = await fetch(`${agent}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      Name: 'st-api',
      ID: 'st-api',
      Address: addressOf(node),
      Port: port,
      Check: {
        CheckID: 'st-api:deep-health',
        Name: 'st-api deep health',
        HTTP: `https://127.0.0.1:${port}/health/deep`,
        TLSServerName: PUBLIC_NAME,
        Interval: '200ms',
        Timeout: '1s',
      },
    }),
  });
  assert.equal(response.status, 200);
}

/** A play request on a connection of its own; `outcome` is its status code, or `error <code>`. */
function playRequest(port: number, token: string, options: { timeout?: number } = {}): { req: ClientRequest; outcome: Promise<string> } {
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/playback-urls',
    agent: false,
    ca: ca.caPem,
    servername: PUBLIC_NAME,
    ...options,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(PLAY_BODY) },
  });
  const outcome = new Promise<string>((resolve) => {
    req.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(String(response.statusCode)));
    });
    req.on('error', (error) => resolve(`error ${(error as NodeJS.ErrnoException).code ?? error.message}`));
  });
  return { req, outcome };
}

/** A play over a connection of its own (no keep-alive pool): what a client that just resolved the name does. */
function playOnNewConnection(port: number, token: string): Promise<string> {
  const { req, outcome } = playRequest(port, token, { timeout: 5000 });
  req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
  req.end(PLAY_BODY);
  return outcome;
}

/** A play whose body is only half sent: in flight on the node until finish() sends the rest. */
function startSlowPlay(port: number, token: string): { finish(): void; outcome: Promise<string> } {
  const { req, outcome } = playRequest(port, token);
  req.write(PLAY_BODY.slice(0, 10));
  return { finish: () => req.end(PLAY_BODY.slice(10)), outcome };
}

/** True once nothing listens on the port any more (the drained node closed its listener). */
before(async () => {
  world = await startWatcherWorld({}, {}, { tlsForChecks: { caPem: ca.caPem } });
  for (const node of NODES) {
    await startApi(node, 'blue');
    await registerInConsul(node);
  }
  world.consul.watch({ node: 'api-node-1', type: 'service', service: 'st-api', args: [...WATCHER, 'handle'], env: world.env, cwd: REPO });
  await waitForPublished(world, NODES, 'blue fleet published', 60_000);
});

after(async () => {
  for (const child of processes.values()) child.kill('SIGKILL');
  await world.stop();
});

describe('blue/green upgrade, node by node, under load', { timeout: 180_000 }, () => {
  it('when every node is excluded, drained, upgraded, verified and included in turn, then not one play fails', async () => {
    const results = new Map<string, number>();
    const token = demo.tokenFor('demo-user', 3600);
    let answer = { at: 0, nodes: [] as string[] };
    let running = true;
    // Bounded even when a failed assertion skips the stop below: the file must still exit.
    const deadline = Date.now() + 150_000;
    const client = async () => {
      for (let i = 0; running && i < 100_000 && Date.now() < deadline; i += 1) {
        // A resolver that caches Route53's answer for the TTL, as real clients do.
        if (Date.now() - answer.at > CLIENT_TTL_MS) answer = { at: Date.now(), nodes: [...publishedNodes(world).keys()] };
        const node = answer.nodes[i % Math.max(1, answer.nodes.length)];
        const port = node === undefined ? undefined : ports.get(node);
        let outcome: string;
        try {
          const response = await httpsRequest(`https://127.0.0.1:${port ?? 1}/v1/playback-urls`, {
            ca: ca.caPem,
            servername: PUBLIC_NAME,
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: PLAY_BODY,
            timeoutMs: 5000,
          });
          outcome = String(response.status);
        } catch (error) {
          outcome = `error ${(error as NodeJS.ErrnoException).code ?? (error as Error).name}`;
        }
        results.set(outcome, (results.get(outcome) ?? 0) + 1);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const stragglers = new Map<string, number>();
    let playsDuringDrain = 0;

    for (const node of NODES) {
      const port = ports.get(node) ?? 0;
      const excluded = await watcherCli(world, ['exclude', node, '--reason', 'blue/green upgrade', '--by', 'ci']);
      assert.equal(excluded.code, 0, excluded.stderr);
      assert.equal(publishedNodes(world).has(node), false, `${node} left DNS`);
      // A straggler ignores the TTL: it plays on this node, each play on a new connection, until
      // STRAGGLE_MS after the SIGTERM. Bounded by the test's deadline too.
      let sigtermAt = Number.POSITIVE_INFINITY;
      const straggler = (async () => {
        for (let i = 0; i < 100_000 && Date.now() < deadline && Date.now() < sigtermAt + STRAGGLE_MS; i += 1) {
          const startedAt = Date.now();
          const outcome = await playOnNewConnection(port, token);
          stragglers.set(outcome, (stragglers.get(outcome) ?? 0) + 1);
          if (startedAt > sigtermAt) playsDuringDrain += 1;
        }
      })();
      // Drain: wait out the clients' DNS cache, then SIGTERM (the node finishes in-flight plays).
      await sleep(2 * CLIENT_TTL_MS);
      const slow = startSlowPlay(port, token);
      await sleep(200);
      const blue = processes.get(node) as ChildProcess;
      const exited = once(blue, 'exit') as Promise<[number | null]>;
      sigtermAt = Date.now();
      blue.kill('SIGTERM');
      // The slow play is still in flight when the node stops listening; then its body completes.
      await waitFor(() => refusesConnections(port), {
        timeoutMs: DRAIN_MS + 15_000,
        intervalMs: 50,
        what: `${node} to stop listening after its drain`,
      });
      slow.finish();
      assert.equal(await slow.outcome, '200', `${node}: the play in flight when it stopped listening was answered`);
      await straggler;
      const [code] = await exited;
      assert.equal(code, 0, `${node} blue stopped cleanly`);

      await startApi(node, 'green');
      await registerInConsul(node);
      const deep = await httpsRequest(`https://127.0.0.1:${ports.get(node) ?? 0}/health/deep`, { ca: ca.caPem, servername: PUBLIC_NAME });
      assert.equal(deep.status, 200, `${node} green verified`);
      const included = await watcherCli(world, ['include', node]);
      assert.equal(included.code, 0, included.stderr);
      await waitForPublished(world, NODES, `${node} back in DNS`, 30_000);
    }
    running = false;
    await Promise.all(clients);

    process.stderr.write(
      `# blue/green: clients ${JSON.stringify(Object.fromEntries(results))}; stragglers ${JSON.stringify(Object.fromEntries(stragglers))}, ${playsDuringDrain} of them sent after a SIGTERM\n`,
    );
    assert.deepEqual([...results.keys()], ['200'], `every play succeeded: ${JSON.stringify(Object.fromEntries(results))}`);
    assert.ok((results.get('200') ?? 0) > 100);
    assert.deepEqual(
      [...stragglers.keys()],
      ['200'],
      `every straggler's new connection was served while its node drained: ${JSON.stringify(Object.fromEntries(stragglers))}`,
    );
    assert.ok(playsDuringDrain >= NODES.length, `${playsDuringDrain} straggler plays sent after a SIGTERM`);
  });
});
