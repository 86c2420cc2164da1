// The hooks' run(): each way a run can fail ends in Sentinel's exit code (README: 0 done, 1 transient,
// 2 permanent) and one JSON log line that names it, in-process with in-memory streams. Consul, the
// Sentinels and the instance are closed loopback ports: no server runs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runInProcess, type CliOutcome } from '../../testkit/in-process-cli.ts';
import { run } from '../../sentinel-hooks/cli.ts';

let configFile: string;
let closedPort: number;

before(async () => {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const dir = mkdtempSync(join(tmpdir(), 'st-hooks-cli-'));
  configFile = join(dir, 'sentinel-hooks.json');
  const endpoint = { address: '127.0.0.1', port: closedPort };
  writeFileSync(
    configFile,
    JSON.stringify({
      masterName: 'mymaster',
      sentinels: [endpoint],
      instances: [endpoint],
      reporter: 'test-host',
      lockFile: join(dir, 'lock'),
      redisTimeoutMs: 200,
      consulTimeoutMs: 500,
      convergeWaitMs: 0,
    }),
  );
});

function hooks(argv: string[], env: Record<string, string> = {}): Promise<CliOutcome> {
  return runInProcess(({ stdout, stderr }) =>
    run(argv, { stdout, stderr, env: { ST_SENTINEL_HOOKS_CONFIG: configFile, CONSUL_HTTP_ADDR: `127.0.0.1:${closedPort}`, ...env } }),
  );
}

describe('sentinel-hooks run(): exit codes', { timeout: 30_000 }, () => {
  it('when --help is asked, then 0; with no command or an unknown option, 2 (permanent) and the usage', async () => {
    const help = await hooks(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: sentinel-hooks/);
    assert.equal((await hooks([])).code, 2);
    const unknown = await hooks(['--verbose', 'reconcile']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^sentinel-hooks: unknown option "--verbose"\n\nUsage:/);
  });

  it('when a command is asked for --help, then 0 and its usage on stdout, without reading the configuration', async () => {
    const unreadable = { ST_SENTINEL_HOOKS_CONFIG: '/nonexistent/hooks.json' };
    for (const command of ['client-reconfig', 'notification', 'reconcile']) {
      for (const argv of [
        [command, '--help'],
        [command, '-h'],
        ['--help', command],
      ]) {
        const result = await hooks(argv, unreadable);
        assert.equal(result.code, 0, `${argv.join(' ')}: ${result.stderr}`);
        assert.match(result.stdout, new RegExp(`^Usage: sentinel-hooks \\[options\\] ${command}`));
        assert.equal(result.stderr, '');
      }
    }
  });

  it('when the command is unknown, then 2 (permanent: Sentinel must not retry) with "unknown command" and the usage, before any configuration is read', async () => {
    for (const command of ['frobnicate', 'toString']) {
      const result = await hooks([command, 'mymaster'], { ST_SENTINEL_HOOKS_CONFIG: '/nonexistent/hooks.json' });
      assert.equal(result.code, 2, command);
      assert.match(result.stderr, new RegExp(`^sentinel-hooks: unknown command "${command}"\n\nUsage: sentinel-hooks`));
      assert.doesNotMatch(result.stderr, /nonexistent|HooksConfigError/);
    }
  });

  it('when --output is not json or text, then 2 with the usage', async () => {
    const result = await hooks(['--output', 'yaml', 'reconcile']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^sentinel-hooks: --output must be json or text, not "yaml"\n\nUsage:/);
  });

  it('when a notification’s event type is --help-like but more arguments follow, then they are Sentinel’s and parsed as such', async () => {
    const result = await hooks(['notification', '-h', 'master mymaster 127.0.0.1 6379']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
  });

  it('when the arguments are not Sentinel’s, then 2 (permanent), logged without a stack', async () => {
    const cases: [string[], RegExp][] = [
      [['reconcile', 'extra'], /^UsageError: reconcile takes no arguments/],
      [['client-reconfig', 'mymaster', 'leader'], /^ArgumentError: expected 7 arguments/],
      [
        ['client-reconfig', 'othermaster', 'leader', 'start', '127.0.0.1', '1', '127.0.0.2', '1'],
        /^ArgumentError: master othermaster is not the one configured/,
      ],
      [['notification', 'sdown', 'x'], /^ArgumentError: event-type "sdown" is not a Sentinel event/],
    ];
    for (const [argv, message] of cases) {
      const result = await hooks(argv);
      assert.equal(result.code, 2, argv.join(' '));
      const line = result.logged.at(-1);
      assert.equal(line?.['exitName'], 'permanent');
      assert.match(String(line?.['msg']), message);
      assert.equal(line?.['err'], undefined);
    }
  });

  it('when the configuration is missing, then 2 (permanent)', async () => {
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_CONFIG: '/nonexistent/hooks.json' });
    assert.equal(result.code, 2);
    assert.match(String(result.logged.at(-1)?.['msg']), /^HooksConfigError: cannot read \/nonexistent\/hooks.json/);
  });

  it('when ST_SENTINEL_HOOKS_LOG_LEVEL is not a level, then 2 (permanent: Sentinel must not retry it), logged with the variable named', async () => {
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_LOG_LEVEL: 'verbose' });
    assert.equal(result.code, 2);
    assert.equal(result.logged.length, 1);
    assert.match(String(result.logged[0]?.['msg']), /ST_SENTINEL_HOOKS_LOG_LEVEL must be one of .*; got "verbose"/);
  });

  it('when Consul is unreachable, then reconcile exits 1 (run again) without a stack, and notification still exits 0', async () => {
    const reconcile = await hooks(['reconcile']);
    assert.equal(reconcile.code, 1);
    const line = reconcile.logged.at(-1);
    assert.equal(line?.['exitName'], 'transient');
    assert.match(
      String(line?.['msg']),
      /^ConsulUnavailableError: Consul agent at 127\.0\.0\.1:\d+: ECONNREFUSED on GET \/v1\/agent\/checks/,
    );
    assert.equal(line?.['err'], undefined);
    const notification = await hooks(['notification', '+sdown', 'master mymaster 127.0.0.1 6379']);
    assert.equal(notification.code, 0);
    assert.match(notification.stderr, /event not recorded in Consul KV: ConsulUnavailableError/);
  });

  it('when the run outlives its deadline (the lock stays held by a live process), then 1 (transient), logged as the deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-hooks-cli-deadline-'));
    const lockFile = join(dir, 'lock');
    // A fresh lock of a live process (this one): never broken as stale, so only the deadline ends the wait.
    writeFileSync(lockFile, `${process.pid} ${Date.now()} held-by-the-test`);
    const endpoint = { address: '127.0.0.1', port: closedPort };
    const file = join(dir, 'sentinel-hooks.json');
    const config = { masterName: 'mymaster', sentinels: [endpoint], instances: [endpoint], reporter: 'test-host', lockFile };
    writeFileSync(file, JSON.stringify({ ...config, deadlineMs: 1000, lockWaitMs: 30_000 }));
    const started = Date.now();
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_CONFIG: file });
    const took = Date.now() - started;
    assert.equal(result.code, 1);
    const line = result.logged.at(-1);
    assert.equal(line?.['exitName'], 'transient');
    assert.match(String(line?.['msg']), /^deadline of 1000 ms reached: LockBusyError: lock .* still held after 30000 ms$/);
    assert.ok(took >= 900 && took < 10_000, `ended after ${took} ms, not at its 1000 ms deadline`);
  });

  it('when text is asked for (as on a terminal), then the log lines read as text, not JSON', async () => {
    const result = await hooks(['--output', 'text', 'reconcile']);
    assert.equal(result.code, 1);
    assert.equal(result.logged.length, 0, 'no JSON line');
    assert.match(result.stderr, /^\d\d:\d\d:\d\d ERROR ConsulUnavailableError: .*ECONNREFUSED.* exit=1 exitName=transient$/m);
  });

  it('when the log level is error, then a failed run logs only its error line', async () => {
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_LOG_LEVEL: 'error' });
    assert.equal(result.code, 1);
    assert.deepEqual(
      result.logged.map((line) => line['level']),
      [50],
    );
  });
});
