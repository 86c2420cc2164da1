// The watch runner against a real handler process: a small .mjs script that
// appends what it got (CONSUL_INDEX + stdin) to a file and exits with a code
// read from a control file, optionally sleeping first.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { makeTempDir, sleep, waitFor } from '../../testkit/processes.ts';
import { startConsulDouble, type ConsulDouble, type NodeHandle, type WatchHandle } from './double.ts';

const HANDLER = `
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
const dir = process.argv[2];
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const stdin = Buffer.concat(chunks).toString('utf8');
const started = Date.now();
appendFileSync(dir + '/calls.log', JSON.stringify({ event: 'start', index: process.env.CONSUL_INDEX, at: started, stdin, extra: process.env.EXTRA ?? null }) + '\\n');
const control = existsSync(dir + '/control.json') ? JSON.parse(readFileSync(dir + '/control.json', 'utf8')) : {};
if (control.sleepMs) await new Promise((r) => setTimeout(r, control.sleepMs));
process.stdout.write('handled ' + process.env.CONSUL_INDEX);
process.stderr.write('warn from handler');
appendFileSync(dir + '/calls.log', JSON.stringify({ event: 'end', index: process.env.CONSUL_INDEX, at: Date.now() }) + '\\n');
process.exit(control.exitCode ?? 0);
`;

interface Call {
  event: 'start' | 'end';
  index: string;
  at: number;
  stdin?: string;
  extra?: string | null;
}

describe('consul double watch runner', () => {
  let consul: ConsulDouble;
  let node: NodeHandle;
  let dir: string;
  let handler: string;
  const watches: WatchHandle[] = [];

  const calls = (): Call[] => {
    const file = join(dir, 'calls.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Call);
  };
  const starts = (): Call[] => calls().filter((c) => c.event === 'start');
  const control = (value: { exitCode?: number; sleepMs?: number }): void => writeFileSync(join(dir, 'control.json'), JSON.stringify(value));
  const passTtl = async (check: string, note: string): Promise<void> => {
    const res = await fetch(`${node.agentAddr}/v1/agent/check/pass/${check}?note=${encodeURIComponent(note)}`, { method: 'PUT' });
    assert.equal(res.status, 200);
  };
  const startWatch = (extra: Partial<Parameters<ConsulDouble['watch']>[0]> = {}): WatchHandle => {
    const watch = consul.watch({
      node: 'api-node-1',
      type: 'service',
      service: 'st-api',
      args: [process.execPath, handler, dir],
      ...extra,
    });
    watches.push(watch);
    return watch;
  };

  before(async () => {
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    node = await consul.addNode('api-node-1', '10.0.1.11');
    const res = await fetch(`${node.agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({
        ID: 'st-api-1',
        Name: 'st-api',
        Address: '10.0.1.11',
        Port: 8080,
        Tags: ['v1'],
        Check: { CheckID: 'ttl', TTL: '60s', Status: 'passing' },
      }),
    });
    assert.equal(res.status, 200);
  });
  beforeEach(async () => {
    await Promise.all(watches.splice(0).map((w) => w.stop()));
    dir = await makeTempDir('consul-watch');
    handler = join(dir, 'handler.mjs');
    writeFileSync(handler, HANDLER);
    control({});
    consul.clearLogs();
  });
  after(async () => {
    await Promise.all(watches.map((w) => w.stop()));
    await consul.stop();
  });

  it('when a watch starts, then the handler fires once with Go-encoded stdin and CONSUL_INDEX, and an index-only change does not fire it', async () => {
    startWatch({ env: { EXTRA: 'from-agent-env' } });
    await waitFor(() => consul.invocations().some((i) => i.exitCode !== null), { timeoutMs: 5000, what: 'the first invocation' });
    const [call] = starts();
    assert.ok(call !== undefined);
    assert.equal(call.extra, 'from-agent-env');
    const invocation = consul.invocations()[0]!;
    assert.equal(call.index, String(invocation.index));
    assert.equal(call.stdin, invocation.stdin);
    assert.ok(call.stdin.endsWith(']\n') && !call.stdin.slice(0, -1).includes('\n'), 'compact, one trailing newline');
    const parsed = JSON.parse(call.stdin) as {
      Checks: { Definition: Record<string, unknown>; CheckID: string }[];
      Service: Record<string, unknown>;
    }[];
    assert.deepEqual(
      parsed[0]!.Checks.map((c) => c.CheckID),
      ['serfHealth', 'ttl'],
    );
    assert.equal(parsed[0]!.Checks[0]!.Definition['Interval'], '0s');
    assert.deepEqual(parsed[0]!.Service['Proxy'], { MeshGateway: {}, Expose: {} });
    assert.equal(invocation.exitCode, 0);
    assert.equal(invocation.output, `handled ${invocation.index}warn from handler`);
    assert.equal(invocation.stderr, 'warn from handler');
    // Unrelated churn moves the index but not the result: no new call.
    await fetch(`${consul.httpAddr}/v1/kv/unrelated`, { method: 'PUT', body: 'x' });
    const other = await consul.addNode('other-node', '10.9.9.9');
    assert.ok(other.agentAddr.startsWith('http://127.0.0.1:'));
    await sleep(400);
    assert.equal(starts().length, 1);
  });

  it('when the result changes, then the handler fires again with the new state', async () => {
    startWatch();
    await waitFor(() => starts().length === 1, { timeoutMs: 5000, what: 'first call' });
    await passTtl('ttl', 'changed output');
    await waitFor(() => starts().length === 2, { timeoutMs: 5000, what: 'second call' });
    assert.match(starts()[1]!.stdin!, /"Output":"changed output"/);
    assert.ok(Number(starts()[1]!.index) > Number(starts()[0]!.index));
  });

  it('when changes land while the handler runs, then calls are serial and the next one sees only the latest state', async () => {
    control({ sleepMs: 600 });
    startWatch();
    await waitFor(() => starts().length === 1, { timeoutMs: 5000, what: 'first call' });
    for (let i = 1; i <= 5; i++) {
      await passTtl('ttl', `burst ${i}`);
      await sleep(30);
    }
    await waitFor(() => calls().filter((c) => c.event === 'end').length >= 2, { timeoutMs: 8000, what: 'the coalesced call' });
    await sleep(300);
    const log = calls();
    assert.equal(log.filter((c) => c.event === 'start').length, 2, 'five changes coalesced into one call');
    assert.match(log.filter((c) => c.event === 'start')[1]!.stdin!, /"Output":"burst 5"/);
    // Serial: the second start comes after the first end.
    const firstEnd = log.find((c) => c.event === 'end')!;
    assert.ok(log.filter((c) => c.event === 'start')[1]!.at >= firstEnd.at);
  });

  it('when two watches run, then their handlers run concurrently', async () => {
    control({ sleepMs: 500 });
    startWatch({ name: 'a' });
    startWatch({ name: 'b' });
    await waitFor(() => calls().filter((c) => c.event === 'end').length === 2, { timeoutMs: 5000, what: 'both calls' });
    const [s1, s2] = starts();
    const firstEnd = calls().find((c) => c.event === 'end')!;
    assert.ok(s1!.at < firstEnd.at && s2!.at < firstEnd.at, 'both started before either ended');
  });

  it('when the handler exits non-zero, then the failure is recorded and not retried', async () => {
    control({ exitCode: 3 });
    startWatch();
    await waitFor(() => consul.invocations().some((i) => i.exitCode === 3), { timeoutMs: 5000, what: 'a failed call' });
    await sleep(500);
    assert.equal(starts().length, 1, 'no retry');
    control({});
    await passTtl('ttl', 'after failure');
    await waitFor(() => starts().length === 2, { timeoutMs: 5000, what: 'the next change' });
  });

  it('when the agent reloads, then every watch fires again with unchanged data', async () => {
    startWatch();
    await waitFor(() => consul.invocations().filter((i) => i.exitCode !== null).length === 1, { timeoutMs: 5000, what: 'first call' });
    consul.reload();
    await waitFor(() => starts().length === 2, { timeoutMs: 5000, what: 'the reload call' });
    const [first, second] = starts();
    assert.equal(second!.stdin, first!.stdin);
    assert.equal(second!.index, first!.index);
  });

  it('when a handler hangs, then its watch is blocked until stop() kills it', async () => {
    control({ sleepMs: 60_000 });
    const watch = startWatch();
    await waitFor(() => starts().length === 1, { timeoutMs: 5000, what: 'the hung call' });
    await passTtl('ttl', 'while hung');
    await sleep(300);
    assert.equal(starts().length, 1, 'blocked behind the hung handler');
    const stopped = Date.now();
    await watch.stop();
    assert.ok(Date.now() - stopped < 3000);
    const invocation = consul.invocations()[0]!;
    assert.equal(invocation.signal, 'SIGKILL');
  });

  it('when passingOnly is set, then an instance with a non-passing check is absent from stdin', async () => {
    const res = await fetch(`${node.agentAddr}/v1/agent/check/warn/ttl`, { method: 'PUT' });
    assert.equal(res.status, 200);
    startWatch({ passingOnly: true });
    await waitFor(() => starts().length === 1, { timeoutMs: 5000, what: 'the call' });
    assert.equal(starts()[0]!.stdin, '[]\n');
    await passTtl('ttl', 'back');
  });
});
