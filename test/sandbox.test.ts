// npm run sandbox as a newcomer runs it, with stdout piped (so one status line per change): it gets
// ready, what it prints answers (a node, the Consul double, the Route53 double through the AWS SDK,
// the watcher's status through the printed environment), a node killed by its printed pid leaves
// DNS in the status stream, and SIGINT leaves none of the printed pids running.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ListResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { route53Client } from '../doubles/route53/sdk.ts';
import { fetchDeepHealth, statusApartFromLag } from '../testkit/health.ts';
import { REPO_ROOT } from '../testkit/node-server.ts';
import { procState, waitFor } from '../testkit/processes.ts';

const READY_TIMEOUT_MS = 240_000;
const LEAVE_DNS_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 100_000;

function match(text: string, pattern: RegExp, what: string): RegExpExecArray {
  const found = pattern.exec(text);
  assert.ok(found, `the sandbox printed no ${what}:\n${text}`);
  return found;
}

/** `export K=V` lines of the printed environment file (values are quoted only when they need it). */
function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined) env[m[1]] = (m[2] ?? '').replace(/^'(.*)'$/, '$1');
  }
  return env;
}

describe('npm run sandbox', { timeout: READY_TIMEOUT_MS + LEAVE_DNS_TIMEOUT_MS + STOP_TIMEOUT_MS + 60_000 }, () => {
  let sandbox: ChildProcess | undefined;
  let output = '';
  let exited: Promise<number | null> = Promise.resolve(null);

  after(() => {
    // A failed test must not leave the sandbox running; the runner's sweep kills what it spawned.
    if (sandbox?.exitCode === null && sandbox.signalCode === null) sandbox.kill('SIGKILL');
  });

  it('when started without a terminal, then it prints working addresses, reports a killed node leaving DNS, and SIGINT stops every printed pid', async () => {
    sandbox = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'testkit/sandbox/main.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = sandbox;
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the sandbox exited ${child.exitCode}:\n${output}`);
        return /^sandbox: ready/m.test(output);
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: 'the sandbox to print its ready line' },
    );
    const printed = output;
    const nodes = [...printed.matchAll(/st-api node (\d)\s+(\S+)\s+(http:\/\/\S+)\s+pid (\d+)/g)].map((m) => ({
      name: m[2] ?? '',
      url: m[3] ?? '',
      pid: Number(m[4]),
    }));
    assert.equal(nodes.length, 3, printed);
    const consul = match(printed, /Consul double\s+HTTP API (http:\/\/\S+)\s+DNS 127\.0\.0\.1:(\d+)/, 'Consul address')[1] ?? '';
    const [, endpoint = '', zoneId = ''] = match(
      printed,
      /Route53 double\s+endpoint (http:\/\/\S+)\s+hosted zone (\S+)/,
      'Route53 endpoint',
    );
    const envFile = match(printed, /^ {2}\. (\S+sandbox\.env)/m, 'environment file')[1] ?? '';
    const pids = [...new Set([...printed.matchAll(/\bpid (\d+)/g)].map((m) => Number(m[1])))];
    // Three nodes, three Redis, three Sentinels, MariaDB and the sandbox itself.
    assert.ok(pids.length >= 11, `expected at least 11 pids, got ${pids.join(', ')}`);

    const [first, second, third] = nodes;
    assert.ok(first !== undefined && second !== undefined && third !== undefined);
    assert.equal(statusApartFromLag(await fetchDeepHealth(first.url)), 200);
    const health = (await (await fetch(`${consul}/v1/health/service/st-api`, { signal: AbortSignal.timeout(5000) })).json()) as {
      Node: { Node: string };
    }[];
    assert.deepEqual(health.map((e) => e.Node.Node).sort(), nodes.map((n) => n.name).sort());
    const route53 = route53Client(endpoint);
    try {
      const { ResourceRecordSets: sets = [] } = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
      const addresses = sets
        .filter((s) => s.Name === 'play.example.com.' && s.Type === 'A')
        .flatMap((s) => (s.ResourceRecords ?? []).map((r) => r.Value))
        .sort();
      assert.deepEqual(addresses, nodes.map((n) => new URL(n.url).hostname).sort());
    } finally {
      route53.destroy();
    }

    const killedAt = output.length;
    process.kill(second.pid, 'SIGKILL');
    const others = `dns=${[first.name, third.name].join(',')} `;
    await waitFor(
      () =>
        output
          .slice(killedAt)
          .split('\n')
          .some((line) => line.includes(' status ') && line.includes(others)),
      {
        timeoutMs: LEAVE_DNS_TIMEOUT_MS,
        intervalMs: 200,
        what: `a status line without ${second.name} in DNS`,
      },
    );

    // The printed environment is enough for the watcher's own command line.
    const status = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'watcher/main.ts'), 'status', '--json'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...readEnvFile(envFile) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(status.status, 0, status.stderr);
    const rows = (JSON.parse(status.stdout) as { nodes: { node: string; inDns: boolean }[] }).nodes;
    assert.deepEqual(
      rows.map((r) => [r.node, r.inDns]),
      nodes.map((n) => [n.name, n.name !== second.name]),
    );

    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS))]);
    assert.equal(code, 0, output.slice(-3000));
    assert.match(output, /stopped; nothing left running/);
    const alive = pids.filter((pid) => {
      const state = procState(pid);
      return state !== null && state !== 'Z';
    });
    assert.deepEqual(alive, [], `still running after SIGINT: ${alive.join(', ')}`);
  });
});
