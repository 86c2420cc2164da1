// The watcher's and the hooks' textfile-collector files (node_exporter's convention for batch jobs):
// the file is replaced atomically, so a reader never sees half of one; promtool accepts it; a failed
// run records its exit code and keeps the last success; and a file that cannot be written is one
// warning, never a different exit code. Consul, Route53, Redis and the Sentinels are closed loopback
// ports here: the runs fail the way they do when those are down.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { pino } from 'pino';
import { parseExposition, publishTextfile, renderTextfile, writeTextfile, type TextfileMetric } from '../../common/textfile-metrics.ts';
import { run as hooksRun } from '../../sentinel-hooks/cli.ts';
import { runInProcess } from '../../testkit/in-process-cli.ts';
import { run as watcherRun } from '../../watcher/cli.ts';

let closedPort: number;
let watcherConfig: string;
let hooksConfig: string;

before(async () => {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const dir = mkdtempSync(join(tmpdir(), 'st-textfile-'));
  watcherConfig = join(dir, 'dns-watcher.json');
  writeFileSync(watcherConfig, JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z1', lockWaitMs: 1000, consulTimeoutMs: 500 }));
  hooksConfig = join(dir, 'sentinel-hooks.json');
  const endpoint = { address: '127.0.0.1', port: closedPort };
  writeFileSync(
    hooksConfig,
    JSON.stringify({
      masterName: 'mymaster',
      sentinels: [endpoint],
      instances: [endpoint],
      lockFile: join(dir, 'lock'),
      redisTimeoutMs: 200,
      consulTimeoutMs: 500,
    }),
  );
});

function textfileDir(): string {
  return mkdtempSync(join(tmpdir(), 'st-textfile-dir-'));
}

/** promtool's verdict on an exposition text (it lints too: names, units, help). */
function promtoolCheckMetrics(text: string): string {
  return execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
}

function values(path: string): Map<string, number> {
  const samples = parseExposition(readFileSync(path, 'utf8'));
  return new Map(samples.map((s) => [`${s.name}${Object.keys(s.labels).length === 0 ? '' : JSON.stringify(s.labels)}`, s.value]));
}

const watcher = (argv: string[], env: Record<string, string>) =>
  runInProcess((io) =>
    watcherRun(argv, { ...io, env: { ST_DNS_CONFIG: watcherConfig, CONSUL_HTTP_ADDR: `127.0.0.1:${closedPort}`, ...env } }),
  );
const hooks = (argv: string[], env: Record<string, string>) =>
  runInProcess(({ stdout, stderr }) =>
    hooksRun(argv, { stdout, stderr, env: { ST_SENTINEL_HOOKS_CONFIG: hooksConfig, CONSUL_HTTP_ADDR: `127.0.0.1:${closedPort}`, ...env } }),
  );

describe('textfile metrics: the file', { timeout: 60_000 }, () => {
  const metrics = (run: number): TextfileMetric[] => [
    { name: 'st_test_last_run_timestamp_seconds', help: 'When the run ended', samples: [{ value: 1_700_000_000 + run }] },
    // Many series, so each write takes long enough for a non-atomic writer to be caught half-way.
    {
      name: 'st_test_series',
      help: 'Filler',
      samples: Array.from({ length: 2000 }, (_, i) => ({ labels: { redis: `10.0.${Math.floor(i / 250)}.${i % 250}:6379` }, value: run })),
    },
  ];

  it('when written, then promtool accepts it and it reads back as written, labels escaped', async () => {
    const dir = textfileDir();
    // As under the units' UMask=0077: node_exporter, another user, must still read the file.
    const umask = process.umask(0o077);
    const path = await writeTextfile(dir, 'st_test', [
      ...metrics(1),
      { name: 'st_test_info', help: 'Escaping', samples: [{ labels: { error: 'a "quoted" \\ back' }, value: 1 }] },
    ]);
    process.umask(umask);
    assert.equal(path, join(dir, 'st_test.prom'));
    assert.equal(statSync(path).mode & 0o777, 0o644);
    const text = readFileSync(path, 'utf8');
    promtoolCheckMetrics(text);
    const samples = parseExposition(text);
    assert.equal(samples.find((s) => s.name === 'st_test_last_run_timestamp_seconds')?.value, 1_700_000_001);
    assert.deepEqual(samples.find((s) => s.name === 'st_test_info')?.labels, { error: 'a "quoted" \\ back' });
    assert.deepEqual(readdirSync(dir), ['st_test.prom'], 'no temporary file left behind');
  });

  it('when rewritten while a reader reads it in a loop, then every read is one whole file (rename, never in-place writes)', async () => {
    const dir = textfileDir();
    const path = await writeTextfile(dir, 'st_test', metrics(0));
    const expectedSeries = 2001;
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      for (let i = 0; i < 100_000 && writing; i++) {
        const samples = parseExposition(readFileSync(path, 'utf8'));
        assert.equal(samples.length, expectedSeries, `read ${reads} saw ${samples.length} series`);
        // One run's values only: never the head of one file and the tail of another.
        assert.equal(new Set(samples.filter((s) => s.name === 'st_test_series').map((s) => s.value)).size, 1);
        reads += 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let run = 1; run <= 40; run++) await writeTextfile(dir, 'st_test', metrics(run));
    writing = false;
    await reader;
    assert.ok(reads > 0);
    assert.deepEqual(readdirSync(dir), ['st_test.prom']);
    assert.equal(parseExposition(readFileSync(path, 'utf8')).find((s) => s.name === 'st_test_series')?.value, 40);
  });

  it('when the directory cannot be written, then publishTextfile warns once, naming the path, and does not throw', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    await publishTextfile('/nonexistent/textfile', 'st_test', logger, () => metrics(1));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['level'], 40);
    assert.match(String(lines[0]?.['msg']), /could not write the metrics file \/nonexistent\/textfile\/st_test\.prom .*\(ENOENT\)/);
  });

  it('when rendered by prom-client, then a counter keeps its _total name and promtool accepts it', async () => {
    const text = await renderTextfile([{ name: 'st_test_events_total', help: 'Events', type: 'counter', samples: [{ value: 3 }] }]);
    assert.match(text, /^# TYPE st_test_events_total counter$/m);
    promtoolCheckMetrics(text);
  });
});

describe('textfile metrics: a failed run', { timeout: 60_000 }, () => {
  it('when the watcher cannot reach Consul, then the file says exit 69, the error kind, and keeps the last success', async () => {
    const dir = textfileDir();
    // What an earlier successful run left.
    writeFileSync(
      join(dir, 'st_dns_watcher.prom'),
      '# HELP st_dns_watcher_last_success_timestamp_seconds x\n# TYPE st_dns_watcher_last_success_timestamp_seconds gauge\n' +
        'st_dns_watcher_last_success_timestamp_seconds 1700000000\n# HELP st_dns_watcher_nodes_in_dns x\n# TYPE st_dns_watcher_nodes_in_dns gauge\nst_dns_watcher_nodes_in_dns 3\n',
    );
    const before = Date.now() / 1000;
    const result = await watcher(['reconcile'], { ST_DNS_TEXTFILE_DIR: dir });
    assert.equal(result.code, 69);
    const path = join(dir, 'st_dns_watcher.prom');
    promtoolCheckMetrics(readFileSync(path, 'utf8'));
    const got = values(path);
    assert.equal(got.get('st_dns_watcher_last_run_exit_code'), 69);
    assert.equal(got.get('st_dns_watcher_last_success_timestamp_seconds'), 1_700_000_000);
    assert.ok((got.get('st_dns_watcher_last_run_timestamp_seconds') ?? 0) >= before);
    assert.equal(got.get('st_dns_watcher_last_run_error_info{"kind":"unavailable","error":"ConsulUnavailableError"}'), 1);
    assert.equal(got.get('st_dns_watcher_nodes_in_dns'), 3, 'what DNS held is carried over');
    assert.equal(got.get('st_dns_watcher_changes_applied{"action":"create"}'), 0);
  });

  it('when the watcher only reads (plan, status) or is asked for --help, then no file is written', async () => {
    const dir = textfileDir();
    assert.equal((await watcher(['status'], { ST_DNS_TEXTFILE_DIR: dir })).code, 69);
    assert.equal((await watcher(['--help'], { ST_DNS_TEXTFILE_DIR: dir })).code, 0);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('when the metrics directory is not writable, then the watcher exits as it would without metrics, with one warning', async () => {
    const without = await watcher(['reconcile'], {});
    const notADir = join(textfileDir(), 'file');
    writeFileSync(notADir, '');
    const withBadDir = await watcher(['reconcile'], { ST_DNS_TEXTFILE_DIR: notADir });
    assert.equal(withBadDir.code, without.code);
    assert.equal(withBadDir.code, 69);
    const warnings = withBadDir.logged.filter((line) => line['level'] === 40 && /metrics file/.test(String(line['msg'])));
    assert.equal(warnings.length, 1, withBadDir.stderr);
  });

  it('when a hook cannot reach Consul, then its file says exit 1 (transient) and the error, and promtool accepts it', async () => {
    const dir = textfileDir();
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_TEXTFILE_DIR: dir });
    assert.equal(result.code, 1);
    const path = join(dir, 'st_sentinel_hooks.prom');
    promtoolCheckMetrics(readFileSync(path, 'utf8'));
    const got = values(path);
    assert.equal(got.get('st_sentinel_hooks_last_run_exit_code'), 1);
    assert.equal(got.get('st_sentinel_hooks_last_success_timestamp_seconds'), 0);
    assert.equal(got.get('st_sentinel_hooks_last_run_error_info{"kind":"unavailable","error":"ConsulUnavailableError"}'), 1);
  });

  it('when the hooks directory is not writable, then the exit code is unchanged (Sentinel reads it)', async () => {
    const notADir = join(textfileDir(), 'file');
    writeFileSync(notADir, '');
    const result = await hooks(['reconcile'], { ST_SENTINEL_HOOKS_TEXTFILE_DIR: notADir });
    assert.equal(result.code, 1);
    assert.equal(result.logged.filter((line) => line['level'] === 40 && /metrics file/.test(String(line['msg']))).length, 1);
  });

  it('when notifications arrive, then each event type is counted across runs and Consul being down does not fail them', async () => {
    const dir = textfileDir();
    const event = ['+switch-master', 'mymaster 10.0.0.1 6379 10.0.0.2 6379'];
    for (let i = 0; i < 2; i++) assert.equal((await hooks(['notification', ...event], { ST_SENTINEL_HOOKS_TEXTFILE_DIR: dir })).code, 0);
    assert.equal(
      (await hooks(['notification', '+sdown', 'master mymaster 10.0.0.1 6379'], { ST_SENTINEL_HOOKS_TEXTFILE_DIR: dir })).code,
      0,
    );
    const path = join(dir, 'st_sentinel_hooks_events.prom');
    promtoolCheckMetrics(readFileSync(path, 'utf8'));
    const got = values(path);
    assert.equal(got.get('st_sentinel_hooks_events_total{"event":"+switch-master"}'), 2);
    assert.equal(got.get('st_sentinel_hooks_events_total{"event":"+sdown"}'), 1);
    assert.ok((got.get('st_sentinel_hooks_last_event_timestamp_seconds{"event":"+sdown"}') ?? 0) > 1_700_000_000);
  });
});
