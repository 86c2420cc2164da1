// Certificate rotation without a restart (issue #12): the files are replaced as certbot does (new
// files written beside them, then renamed over) while clients keep playing over kept-alive and new
// connections; a pair that does not load is refused and the old one keeps serving; SIGHUP reloads
// the real entry point. Every loop is bounded in requests and time; the assertions are counts.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { httpsRequest } from '../../testkit/https-client.ts';
import { startNodeServer } from '../../testkit/node-server.ts';
import { errorMessage, makeTempDir, waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../testkit/tls.ts';

const PLAY = JSON.stringify({ contentId: 'tt-demo-0001', device: 'web' });

let dir: string;
let ca: TestCa;
let pairA: CertificateFiles;
let pairB: CertificateFiles;
let pairC: CertificateFiles;

before(async () => {
  dir = await makeTempDir('st-https-rotation');
  ca = createTestCa(dir);
  pairA = ca.server('pair-a', ['play.example.com']);
  pairB = ca.server('pair-b', ['play.example.com']);
  pairC = ca.server('pair-c', ['play.example.com'], { keyType: 'rsa' });
});

/** A directory holding serving.crt and serving.key, the paths st-api is configured with. */
function liveDir(name: string, first: CertificateFiles): { certFile: string; keyFile: string } {
  const live = join(dir, name);
  mkdirSync(live);
  const files = { certFile: join(live, 'serving.crt'), keyFile: join(live, 'serving.key') };
  copyFileSync(first.certFile, files.certFile);
  copyFileSync(first.keyFile, files.keyFile);
  return files;
}

/** As certbot and editors do: write the new file beside the old one, then rename it over (atomic). */
function replaceFile(target: string, source: string | { text: string }): void {
  const temporary = `${target}.new`;
  if (typeof source === 'string') copyFileSync(source, temporary);
  else writeFileSync(temporary, source.text, { mode: 0o600 });
  renameSync(temporary, target);
}

function install(files: { certFile: string; keyFile: string }, pair: { certFile: string; keyFile: string }): void {
  replaceFile(files.certFile, pair.certFile);
  replaceFile(files.keyFile, pair.keyFile);
}

/** The serial a new connection is shown. */
async function servedSerial(baseUrl: string): Promise<string> {
  return (await httpsRequest(`${baseUrl}/health/live`, { ca: ca.caPem })).serial;
}

interface ConnectionRecord {
  readonly serial: string;
  /** Whether the connection was opened after the node had accepted the new certificate. */
  readonly openedAfterRotation: boolean;
  requestsAfterRotation: number;
}

describe('when the certificate files are replaced under steady load', () => {
  let node: TestNode;
  let files: { certFile: string; keyFile: string };
  before(async () => {
    files = liveDir('live-load', pairA);
    node = await startTestNode({ tls: files });
  });
  after(async () => {
    await node?.close();
  });

  it('then no request fails, new connections get the new certificate and kept-alive ones keep working on the old', async (t) => {
    const KEEP_ALIVE_CLIENTS = 3;
    const NEW_CONNECTION_CLIENTS = 2;
    const MAX_REQUESTS = 5000;
    const token = node.tokenFor('demo-user');
    const rotated = (): boolean => node.certificate?.current().serial === pairB.serial;
    const connections = new Map<TLSSocket, ConnectionRecord>();
    const failures: string[] = [];
    let requests = 0;
    let stop = false;

    const client = async (agent: Agent | false): Promise<void> => {
      const deadline = Date.now() + 120_000;
      while (!stop && requests < MAX_REQUESTS && Date.now() < deadline) {
        const startedAfterRotation = rotated();
        try {
          const answer = await httpsRequest(`${node.baseUrl}/v1/playback-urls`, {
            ca: ca.caPem,
            agent,
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: PLAY,
          });
          if (answer.status !== 200) failures.push(`HTTP ${answer.status}: ${answer.body}`);
          const record = connections.get(answer.socket) ?? {
            serial: answer.serial,
            openedAfterRotation: startedAfterRotation,
            requestsAfterRotation: 0,
          };
          if (startedAfterRotation) record.requestsAfterRotation++;
          connections.set(answer.socket, record);
        } catch (error) {
          failures.push(errorMessage(error));
        }
        requests++;
      }
    };
    const agents = Array.from({ length: KEEP_ALIVE_CLIENTS }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    const clients = [...agents.map((agent) => client(agent)), ...Array.from({ length: NEW_CONNECTION_CLIENTS }, () => client(false))];
    try {
      await waitFor(() => requests >= 200 || failures.length > 0, {
        timeoutMs: 60_000,
        intervalMs: 20,
        what: '200 plays before the rotation',
      });
      const beforeRotation = requests;
      install(files, pairB);
      await waitFor(rotated, { timeoutMs: 15_000, intervalMs: 20, what: 'the node to load the new certificate files' });
      const atRotation = requests;
      await waitFor(
        () =>
          (requests - atRotation >= 300 &&
            [...connections.values()].some((c) => c.openedAfterRotation) &&
            [...connections.values()].filter((c) => !c.openedAfterRotation && c.requestsAfterRotation > 0).length >= KEEP_ALIVE_CLIENTS) ||
          failures.length > 0,
        { timeoutMs: 60_000, intervalMs: 20, what: '300 plays after the rotation on old and new connections' },
      );
      stop = true;
      await Promise.all(clients);

      const all = [...connections.values()];
      const opened = all.filter((c) => c.openedAfterRotation);
      const oldKeptAlive = all.filter((c) => !c.openedAfterRotation && c.requestsAfterRotation > 0);
      const figures = {
        requests,
        failures: failures.length,
        beforeRotation,
        afterRotation: requests - atRotation,
        connectionsOpenedBefore: all.length - opened.length,
        connectionsOpenedAfter: opened.length,
        oldConnectionsUsedAfterRotation: oldKeptAlive.length,
        playsOnOldConnectionsAfterRotation: oldKeptAlive.reduce((sum, c) => sum + c.requestsAfterRotation, 0),
      };
      t.diagnostic(`rotation under load: ${JSON.stringify(figures)}`);
      assert.deepEqual(failures, []);
      assert.ok(requests >= 500, `${requests} plays`);
      assert.ok(opened.length >= 1, 'connections were opened after the rotation');
      assert.deepEqual(
        new Set(opened.map((c) => c.serial)),
        new Set([pairB.serial]),
        'every connection opened after the rotation saw the new certificate',
      );
      assert.ok(oldKeptAlive.length >= KEEP_ALIVE_CLIENTS, `${oldKeptAlive.length} kept-alive connections went on after the rotation`);
      assert.deepEqual(new Set(oldKeptAlive.map((c) => c.serial)), new Set([pairA.serial]), 'they still carry the old certificate');
      assert.equal(await servedSerial(node.baseUrl), pairB.serial);
    } finally {
      stop = true;
      await Promise.all(clients);
      for (const agent of agents) agent.destroy();
    }
  });
});

describe('when the new files do not make a usable pair', () => {
  let node: TestNode;
  let files: { certFile: string; keyFile: string };
  const logs: string[] = [];
  before(async () => {
    files = liveDir('live-bad', pairA);
    node = await startTestNode({ tls: files, logDestination: { write: (line: string) => void logs.push(line) } });
  });
  after(async () => {
    await node?.close();
  });

  /** The first log line with `msg` containing `text` written after `from` lines. */
  function logLine(from: number, text: string): Promise<Record<string, unknown>> {
    return waitFor(
      () =>
        logs
          .slice(from)
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => String(line['msg']).includes(text)),
      { timeoutMs: 15_000, intervalMs: 20, what: `a log line with "${text}"` },
    );
  }

  it('then a certificate that does not parse, or a key of another certificate, is refused with one log line and the old pair keeps serving', async () => {
    let from = logs.length;
    replaceFile(files.certFile, { text: 'garbage, not PEM\n' });
    const garbage = await logLine(from, 'TLS certificate refused');
    assert.equal(
      garbage['msg'],
      `TLS certificate refused: the certificate file ${files.certFile} holds no PEM certificate; the previous certificate keeps serving`,
    );
    assert.equal(garbage['servingSerial'], pairA.serial);
    assert.equal(await servedSerial(node.baseUrl), pairA.serial);

    from = logs.length;
    // Certificate B with A's key still in place: the pair does not match.
    replaceFile(files.certFile, pairB.certFile);
    const mismatch = await logLine(from, 'TLS certificate refused');
    assert.equal(
      mismatch['msg'],
      `TLS certificate refused: the key in ${files.keyFile} does not match the certificate in ${files.certFile} (the leaf certificate must come first in the chain); the previous certificate keeps serving`,
    );
    assert.equal(await servedSerial(node.baseUrl), pairA.serial);
    assert.equal(logs.slice(from).filter((line) => line.includes('TLS certificate refused')).length, 1, 'one line per refused pair');

    // The right key arrives: the pair is complete and is taken.
    from = logs.length;
    replaceFile(files.keyFile, pairB.keyFile);
    const rotated = await logLine(from, 'TLS certificate rotated');
    assert.equal(rotated['serial'], pairB.serial);
    assert.equal(rotated['previousSerial'], pairA.serial);
    assert.equal(rotated['notAfter'], node.certificate?.current().notAfter.toISOString());
    assert.equal(await servedSerial(node.baseUrl), pairB.serial);
    assert.doesNotMatch(logs.join(''), /BEGIN|garbage, not PEM/);
  });
});

describe('when the directory sends no change events (watch off, as on NFS)', () => {
  it('then the periodic comparison still finds the new pair', async () => {
    const files = liveDir('live-poll', pairA);
    const logs: string[] = [];
    const node = await startTestNode({
      tls: { ...files, watch: false, pollIntervalMs: 200 },
      logDestination: { write: (line: string) => void logs.push(line) },
    });
    try {
      install(files, pairB);
      await waitFor(async () => (await servedSerial(node.baseUrl)) === pairB.serial, {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'the periodic check to load the new pair',
      });
      assert.match(logs.join(''), new RegExp(`"trigger":"poll".*"serial":"${pairB.serial}".*"msg":"TLS certificate rotated"`));
    } finally {
      await node.close();
    }
  });
});

describe('when st-api (its own process) receives SIGHUP', () => {
  it('then it reloads the certificate files that it does not watch, and says so', async () => {
    const files = liveDir('live-sighup', pairA);
    const demo = embeddedDemo();
    const configFile = join(dir, 'sighup-config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        ...demo.rawConfig,
        // Not watched, and no periodic check within the test: only SIGHUP can reload.
        listen: { host: '127.0.0.1', port: 0, tls: { ...files, watch: false, pollIntervalMs: 3_600_000 } },
        logLevel: 'info',
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, ST_API_CONFIG: configFile };
    delete env['ST_API_HOST'];
    delete env['ST_API_PORT'];
    const server = await startNodeServer({ name: 'st-api', script: join('api', 'main.ts'), env, listeningMessage: 'st-api listening' });
    try {
      const baseUrl = `https://127.0.0.1:${new URL(server.baseUrl).port}`;
      assert.equal(await servedSerial(baseUrl), pairA.serial);
      process.kill(server.pid, 'SIGHUP');
      await waitFor(() => server.outputTail().includes('"msg":"TLS certificate files unchanged"'), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'the unchanged-files log line',
      });

      install(files, pairC);
      assert.equal(await servedSerial(baseUrl), pairA.serial, 'not reloaded before the signal');
      process.kill(server.pid, 'SIGHUP');
      await waitFor(async () => (await servedSerial(baseUrl)) === pairC.serial, {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'new connections to get the new certificate',
      });
      assert.match(server.outputTail(), new RegExp(`"trigger":"sighup".*"serial":"${pairC.serial}".*"msg":"TLS certificate rotated"`));
      // Still serving plays (the signal did not stop it), now with an RSA certificate.
      const live = await httpsRequest(`${baseUrl}/health/live`, { ca: ca.caPem });
      assert.equal(live.status, 200);
    } finally {
      await server.stop();
    }
  });
});
