// The watcher's run(): each way a run can fail ends in its exit code (README "Exit codes") and one
// JSON log line that names it, in-process with in-memory streams and no server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runInProcess, type CliOutcome } from '../../testkit/in-process-cli.ts';
import { run } from '../../watcher/cli.ts';

let configFile: string;
/** A port nothing listens on. */
let closed: string;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-watcher-cli-'));
  configFile = join(dir, 'dns-watcher.json');
  writeFileSync(
    configFile,
    JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z1', minHealthy: 2, lockWaitMs: 1000, consulTimeoutMs: 500 }),
  );
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closed = `127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise((resolve) => probe.close(resolve));
});

function watcher(argv: string[], env: Record<string, string> = {}, stdin = ''): Promise<CliOutcome> {
  return runInProcess((io) => run(argv, { ...io, env: { ST_DNS_CONFIG: configFile, CONSUL_HTTP_ADDR: closed, ...env } }), stdin);
}

describe('watcher run(): exit codes', { timeout: 30_000 }, () => {
  it('when --help is asked, then 0 and the usage on stdout; with no command, 64 and the usage on stderr', async () => {
    const help = await watcher(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: watcher/);
    const none = await watcher([]);
    assert.equal(none.code, 64);
    assert.match(none.stderr, /^Usage: watcher/);
  });

  it('when an option is unknown, then 64 with the usage', async () => {
    const result = await watcher(['reconcile', '--frobnicate']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /^watcher: Unknown option '--frobnicate'/);
  });

  it('when any command is asked for --help, then 0 and its usage on stdout, without reading the configuration or touching Consul', async () => {
    // A configuration that cannot be read would exit 78: help never gets that far.
    const unreadable = { ST_DNS_CONFIG: '/nonexistent/dns-watcher.json' };
    for (const command of ['handle', 'reconcile', 'plan', 'status', 'exclude', 'include']) {
      for (const flag of ['--help', '-h']) {
        const result = await watcher([command, flag], unreadable);
        assert.equal(result.code, 0, `${command} ${flag}: ${result.stderr}`);
        assert.match(result.stdout, new RegExp(`^Usage: watcher ${command}`));
        assert.match(result.stdout, /--config PATH/);
        assert.equal(result.stderr, '');
      }
    }
  });

  it('when the command is unknown, then 64 with "unknown command" and the usage, before any configuration is read', async () => {
    for (const command of ['frobnicate', 'toString', 'constructor']) {
      const result = await watcher([command], { ST_DNS_CONFIG: '/nonexistent/dns-watcher.json' });
      assert.equal(result.code, 64, command);
      assert.match(result.stderr, new RegExp(`^watcher: unknown command "${command}"\n\nUsage: watcher <command>`));
      assert.equal(result.stdout, '');
    }
  });

  it('when --output is neither json nor text, or contradicts --json, then 64 with the usage', async () => {
    for (const argv of [
      ['status', '--output', 'yaml'],
      ['plan', '--json', '--output', 'text'],
    ]) {
      const result = await watcher(argv);
      assert.equal(result.code, 64, argv.join(' '));
      assert.match(result.stderr, /^watcher: (--output must be json or text, not "yaml"|--json and --output text contradict)/);
    }
  });

  it('when a command misses its arguments, then 64 (usage), logged as such', async () => {
    for (const argv of [['exclude'], ['exclude', 'api-node-1']]) {
      const result = await watcher(argv);
      assert.equal(result.code, 64, argv.join(' '));
      assert.equal(result.logged.at(-1)?.['exitName'], 'usage');
      assert.match(String(result.logged.at(-1)?.['msg']), /^UsageError: /);
    }
  });

  it('when ST_DNS_LOG_LEVEL is not a level, then 78 (config), logged with the variable named', async () => {
    const result = await watcher(['status'], { ST_DNS_LOG_LEVEL: 'verbose' });
    assert.equal(result.code, 78);
    assert.equal(result.logged.length, 1);
    assert.equal(result.logged[0]?.['exitName'], 'config');
    assert.match(String(result.logged[0]?.['msg']), /ST_DNS_LOG_LEVEL must be one of .*; got "verbose"/);
  });

  it('when ST_DNS_LOG_LEVEL names a level, then it applies: at error, a failed run logs only its error line', async () => {
    const result = await watcher(['status'], { ST_DNS_LOG_LEVEL: 'error' });
    assert.equal(result.code, 69);
    assert.deepEqual(
      result.logged.map((line) => line['level']),
      [50],
    );
  });

  it('when the configuration file is missing, then 78 (config)', async () => {
    const result = await watcher(['reconcile'], { ST_DNS_CONFIG: '/nonexistent/dns-watcher.json' });
    assert.equal(result.code, 78);
    assert.match(String(result.logged.at(-1)?.['msg']), /^WatcherConfigError: cannot read \/nonexistent\/dns-watcher.json/);
  });

  it('when handle runs without CONSUL_INDEX or with garbage on stdin, then 65 (bad input)', async () => {
    assert.equal((await watcher(['handle'], {}, '[]')).code, 65);
    const garbage = await watcher(['handle'], { CONSUL_INDEX: '7' }, 'not json');
    assert.equal(garbage.code, 65);
    assert.match(String(garbage.logged.at(-1)?.['msg']), /^SourceInputError: input is not JSON/);
  });

  it('when stderr is a terminal, then the log is readable text; with --json, JSON lines again', async () => {
    const onTerminal = (argv: string[]) =>
      runInProcess((io) =>
        run(argv, {
          ...io,
          stderr: Object.assign(io.stderr, { isTTY: true }),
          env: { ST_DNS_CONFIG: configFile, CONSUL_HTTP_ADDR: closed },
        }),
      );
    const text = await onTerminal(['status']);
    assert.equal(text.code, 69);
    assert.equal(text.logged.length, 0, 'no JSON line');
    assert.match(text.stderr, /^\d\d:\d\d:\d\d ERROR \S+: .*ECONNREFUSED.* exit=69 exitName=unavailable\n$/);
    const json = await onTerminal(['status', '--json']);
    assert.equal(json.code, 69);
    assert.equal(json.logged.at(-1)?.['exitName'], 'unavailable');
  });

  it('when Consul is unreachable, then 69 (unavailable), the error without a stack (it is not a bug)', async () => {
    const result = await watcher(['reconcile']);
    assert.equal(result.code, 69);
    const line = result.logged.at(-1);
    assert.equal(line?.['exitName'], 'unavailable');
    assert.match(String(line?.['msg']), /ECONNREFUSED/);
    assert.equal(line?.['err'], undefined);
  });
});

describe('watcher as a process', { timeout: 60_000 }, () => {
  const main = new URL('../../watcher/main.ts', import.meta.url).pathname;
  const watcherProcess = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', main, 'status'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '', ST_DNS_CONFIG: configFile, CONSUL_HTTP_ADDR: closed, ...env },
    });

  const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  it(
    'when run on a real terminal (a pseudo-terminal from script(1)), then the log line is readable text; piped, it is JSON',
    { skip: hasScript ? false : 'script(1) from util-linux is not installed' },
    () => {
      const command = [process.execPath, '--import', 'tsx', main, 'status'].map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
      const onTerminal = spawnSync('script', ['-qec', command, '/dev/null'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '', ST_DNS_CONFIG: configFile, CONSUL_HTTP_ADDR: closed },
      });
      assert.equal(onTerminal.status, 69, onTerminal.stdout);
      // script(1) copies the terminal to its stdout, with the terminal's CRLF line ends.
      assert.match(onTerminal.stdout, /^\d\d:\d\d:\d\d ERROR \S+: .*ECONNREFUSED.* exit=69 exitName=unavailable\r?\n$/);
      const piped = watcherProcess({});
      assert.equal((JSON.parse(piped.stderr) as { exitName: string }).exitName, 'unavailable');
    },
  );

  it('when a command runs on Node 20, then the AWS SDK’s Node-version warning is not printed, only the run’s own log line', () => {
    const result = watcherProcess({});
    assert.equal(result.status, 69, result.stderr);
    assert.doesNotMatch(result.stderr, /NodeVersionSupportWarning|AWS SDK for JavaScript/);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    // The switch is the SDK's own: set to false, the warning is back (Node < 22 only; newer Node never gets it).
    if (Number(process.versions.node.split('.')[0]) < 22) {
      const asked = watcherProcess({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' });
      assert.match(asked.stderr, /NodeVersionSupportWarning/);
    }
  });
});
