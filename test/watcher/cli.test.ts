// The watcher's run(): each way a run can fail ends in its exit code (README "Exit codes") and one
// JSON log line that names it, in-process with in-memory streams and no server.
import assert from 'node:assert/strict';
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

  it('when a command is unknown or misses its arguments, then 64 (usage), logged as such', async () => {
    for (const argv of [['frobnicate'], ['exclude'], ['exclude', 'api-node-1']]) {
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

  it('when Consul is unreachable, then 69 (unavailable), the error without a stack (it is not a bug)', async () => {
    const result = await watcher(['reconcile']);
    assert.equal(result.code, 69);
    const line = result.logged.at(-1);
    assert.equal(line?.['exitName'], 'unavailable');
    assert.match(String(line?.['msg']), /ECONNREFUSED/);
    assert.equal(line?.['err'], undefined);
  });
});
