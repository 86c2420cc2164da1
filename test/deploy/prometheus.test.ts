// deploy/prometheus/alerts.yml and deploy/grafana/st-api.json (issue #13): promtool accepts the rules
// and their unit tests fire (watcher stale, floor engaged…); and every metric the rules and the
// dashboard's panels name is one the system really exports. That system runs here: the Consul and
// Route53 doubles, a real Redis with a real Sentinel, the hooks' reconcile and a notification writing
// their textfile, three st-api nodes finding Redis through Consul DNS and serving plays, and the
// watcher's reconcile writing its textfile, once with every node healthy and once with the floor engaged.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseExposition } from '../../common/textfile-metrics.ts';
import { run as hooksRun } from '../../sentinel-hooks/cli.ts';
import { runInProcess } from '../../testkit/in-process-cli.ts';
import { freePort, LOOPBACK, makeTempDir, ManagedServer, waitFor } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';
import { httpsRequest } from '../../testkit/https-client.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa } from '../../testkit/tls.ts';
import { command } from '../../sentinel-hooks/resp.ts';
import { registerApiNode, REPO, stApiChecks, startWatcherWorld, watcherCli, type WatcherWorld } from '../watcher/harness.ts';

const RULES = join(REPO, 'deploy', 'prometheus', 'alerts.yml');
const RULE_TESTS = join(REPO, 'deploy', 'prometheus', 'alerts.test.yml');
const DASHBOARD = join(REPO, 'deploy', 'grafana', 'st-api.json');
const RUNBOOK = readFileSync(join(REPO, 'deploy', 'RUNBOOK.md'), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function ruleList(): Rule[] {
  const file = parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] };
  return file.groups.flatMap((group) => group.rules);
}

function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
}

/** `st_*` names in a PromQL expression, quoted label values left out. */
function metricNames(expr: string): string[] {
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...unquoted.matchAll(/\b(st_[a-z0-9_]+)\b/g)].map((match) => match[1] ?? '');
}

/** `name{label="value", …}` selectors and their equality matchers (=, not =~ or !=). */
function equalityMatchers(expr: string): { name: string; label: string; value: string }[] {
  const found: { name: string; label: string; value: string }[] = [];
  for (const selector of expr.matchAll(/\b(st_[a-z0-9_]+)\{([^}]*)\}/g)) {
    for (const matcher of (selector[2] ?? '').matchAll(/([a-z_]+)\s*=\s*"((?:[^"\\]|\\.)*)"/g)) {
      found.push({ name: selector[1] ?? '', label: matcher[1] ?? '', value: matcher[2] ?? '' });
    }
  }
  return found;
}

/** Names a scrape of this text yields: every sample's name and every family's (histogram series included). */
function exportedNames(text: string): Set<string> {
  const names = new Set(parseExposition(text).map((sample) => sample.name));
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [name, type] = [match[1] ?? '', match[2] ?? ''];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_count', '_sum']) names.add(`${name}${suffix}`);
  }
  return names;
}

describe('deploy/prometheus/alerts.yml with promtool', () => {
  it('when checked, then promtool accepts every rule', () => {
    const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  it('when its unit tests run, then the alerts fire as alerts.test.yml expects (watcher stale and failing, floor engaged, …)', () => {
    const out = execFileSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8' });
    assert.match(out, /SUCCESS/);
    const tests = readFileSync(RULE_TESTS, 'utf8');
    for (const alert of ['StDnsWatcherStale', 'StDnsFloorEngaged'])
      assert.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });

  it("when the dashboard's expressions are checked as recording rules, then promtool parses every one", async () => {
    const dir = await makeTempDir('st-dashboard-rules');
    const expressions = dashboardExpressions();
    assert.ok(expressions.length > 20);
    const rules = { groups: [{ name: 'dashboard', rules: expressions.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }] };
    writeFileSync(join(dir, 'dashboard.rules.json'), JSON.stringify(rules));
    const out = execFileSync('promtool', ['check', 'rules', join(dir, 'dashboard.rules.json')], { encoding: 'utf8' });
    assert.match(out, new RegExp(`SUCCESS: ${expressions.length} rules found`));
  });

  it('when a rule is broken, then the unit tests fail (they are not vacuous)', async () => {
    const dir = await makeTempDir('st-rules');
    writeFileSync(
      join(dir, 'alerts.yml'),
      readFileSync(RULES, 'utf8').replace('st_dns_watcher_floor_engaged == 1', 'st_dns_watcher_floor_engaged == 2'),
    );
    writeFileSync(join(dir, 'alerts.test.yml'), readFileSync(RULE_TESTS, 'utf8'));
    assert.throws(
      () => execFileSync('promtool', ['test', 'rules', join(dir, 'alerts.test.yml')], { encoding: 'utf8', stdio: 'pipe' }),
      /FAILED/,
    );
  });

  it('when read, then every alert has a severity, a summary, a description and a runbook link to a section', () => {
    const anchors = new Set(
      [...RUNBOOK.matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        (m[1] ?? '')
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const rule of ruleList()) {
      assert.match(rule.labels?.['severity'] ?? '', /^(critical|warning|info)$/, rule.alert);
      assert.ok((rule.annotations?.['summary'] ?? '').length > 10, rule.alert);
      assert.ok((rule.annotations?.['description'] ?? '').length > 40, rule.alert);
      const anchor = /^deploy\/RUNBOOK\.md#([a-z0-9-]+)$/.exec(rule.annotations?.['runbook_url'] ?? '')?.[1];
      assert.ok(anchor !== undefined, `${rule.alert}: runbook_url`);
      assert.ok(anchors.has(anchor), `${rule.alert}: deploy/RUNBOOK.md has no section #${anchor}`);
    }
  });
});

describe('the metrics the rules and the dashboard name, against what the system exports', { timeout: 240_000 }, () => {
  let world: WatcherWorld;
  let redis: RedisServer;
  let sentinel: ManagedServer;
  const nodes: TestNode[] = [];
  let textfiles: string;
  const exports = { api: '', apiHttps: '', watcherHealthy: '', watcherFloor: '', hooks: '', hookEvents: '' };

  before(async () => {
    const dir = await makeTempDir('st-prom');
    textfiles = await makeTempDir('st-prom-textfile');
    world = await startWatcherWorld({ minHealthy: 2 });

    // Redis and one Sentinel (quorum 1) on this host; the hooks tag it master in the local agent.
    redis = await startRedis();
    const sentinelPort = await freePort();
    writeFileSync(
      join(dir, 'sentinel.conf'),
      [
        `port ${sentinelPort}`,
        `bind ${LOOPBACK}`,
        'daemonize no',
        'logfile ""',
        `dir ${dir}`,
        `sentinel monitor mymaster ${redis.host} ${redis.port} 1`,
        '',
      ].join('\n'),
    );
    sentinel = new ManagedServer({
      name: 'redis-sentinel:prometheus',
      command: 'redis-sentinel',
      args: [join(dir, 'sentinel.conf')],
      logFile: join(dir, 'sentinel.log'),
      readyTimeoutMs: 15_000,
      isReady: async () =>
        Array.isArray(await command(LOOPBACK, sentinelPort, ['SENTINEL', 'get-master-addr-by-name', 'mymaster'], { timeoutMs: 500 })),
    });
    await sentinel.start();
    const redisHost = await world.consul.addNode('redis-a', LOOPBACK);
    const hooksConfig = join(dir, 'sentinel-hooks.json');
    writeFileSync(
      hooksConfig,
      JSON.stringify({
        masterName: 'mymaster',
        sentinels: [{ address: LOOPBACK, port: sentinelPort }],
        instances: [{ address: redis.host, port: redis.port }],
        reporter: 'redis-a',
        lockFile: join(dir, 'hooks.lock'),
      }),
    );
    const hooks = (argv: string[]) =>
      runInProcess(({ stdout, stderr }) =>
        hooksRun(argv, {
          stdout,
          stderr,
          env: { ST_SENTINEL_HOOKS_CONFIG: hooksConfig, CONSUL_HTTP_ADDR: redisHost.agentAddr, ST_SENTINEL_HOOKS_TEXTFILE_DIR: textfiles },
        }),
      );
    const reconciled = await hooks(['reconcile']);
    assert.equal(reconciled.code, 0, reconciled.stderr);
    exports.hooks = readFileSync(join(textfiles, 'st_sentinel_hooks.prom'), 'utf8');
    assert.equal((await hooks(['notification', '+switch-master', 'mymaster 10.0.0.1 6379 127.0.0.1 6379'])).code, 0);
    exports.hookEvents = readFileSync(join(textfiles, 'st_sentinel_hooks_events.prom'), 'utf8');

    // Three st-api nodes that find the Redis master through Consul DNS, as production does.
    for (let i = 1; i <= 3; i++) {
      const node = await startTestNode({
        overrides: {
          redis: {
            discovery: { name: 'master.redis.service.consul', dnsServer: `${LOOPBACK}:${world.consul.dnsPort}`, useSrv: true },
            commandTimeoutMs: 200,
            connectTimeoutMs: 500,
          },
        },
      });
      nodes.push(node);
      await registerApiNode(world, `api-node-${i}`, `127.0.1.${i}`, node);
    }
    const first = nodes[0];
    assert.ok(first !== undefined);
    await waitFor(async () => ((await (await fetch(`${first.baseUrl}/health/deep`)).text()).includes('redis=ok') ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'node 1 uses the Redis master found through Consul DNS',
    });
    // Traffic: plays (the second one from the cache), a denial, an unauthenticated call.
    for (let i = 0; i < 3; i++) assert.equal((await first.play({ contentId: 'tt-demo-0001', device: 'web' })).status, 200);
    assert.equal((await first.play({ contentId: 'tt-demo-0001', device: 'web' }, first.tokenFor('nobody-bought-anything'))).status, 403);
    assert.equal((await first.play({ contentId: 'tt-demo-0001', device: 'web' }, null)).status, 401);
    exports.api = await (await fetch(`${first.baseUrl}/metrics`)).text();
    // The certificate's expiry exists only on a node that serves HTTPS.
    const ca = createTestCa(dir);
    const httpsNode = await startTestNode({ tls: ca.server('st-api') });
    nodes.push(httpsNode);
    exports.apiHttps = (await httpsRequest(`${httpsNode.baseUrl}/metrics`, { ca: ca.caPem })).body;

    await waitFor(
      async () => ((await stApiChecks(world, 'api-node-3'))?.every((check) => check.Status !== 'critical') === true ? true : undefined),
      {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: 'Consul checks the nodes',
      },
    );
    const healthy = await watcherCli(world, ['reconcile'], { env: { ST_DNS_TEXTFILE_DIR: textfiles } });
    assert.equal(healthy.code, 0, healthy.stderr);
    exports.watcherHealthy = readFileSync(join(textfiles, 'st_dns_watcher.prom'), 'utf8');

    // Two of three nodes drain: one eligible, fewer than minHealthy 2, so the floor keeps records.
    nodes[1]?.service.startDraining();
    nodes[2]?.service.startDraining();
    for (const name of ['api-node-2', 'api-node-3']) {
      await waitFor(
        async () => ((await stApiChecks(world, name))?.some((check) => check.Status === 'critical') === true ? true : undefined),
        {
          timeoutMs: 15_000,
          intervalMs: 100,
          what: `${name} critical in Consul`,
        },
      );
    }
    const floor = await watcherCli(world, ['reconcile'], { env: { ST_DNS_TEXTFILE_DIR: textfiles } });
    assert.equal(floor.code, 0, floor.stderr);
    exports.watcherFloor = readFileSync(join(textfiles, 'st_dns_watcher.prom'), 'utf8');
  });

  after(async () => {
    await world?.stop();
    await Promise.all(nodes.map((node) => node.close()));
    await sentinel?.stop();
    await redis?.stop();
  });

  const value = (text: string, name: string, labels: Record<string, string> = {}) =>
    parseExposition(text).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  it('when the watcher ran with every node healthy, then its file says 3 registered, healthy and in DNS, 3 created, no floor', () => {
    const text = exports.watcherHealthy;
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(value(text, 'st_dns_watcher_last_run_exit_code'), 0);
    assert.equal(value(text, 'st_dns_watcher_nodes_registered'), 3);
    assert.equal(value(text, 'st_dns_watcher_nodes_healthy'), 3);
    assert.equal(value(text, 'st_dns_watcher_nodes_in_dns'), 3);
    assert.equal(value(text, 'st_dns_watcher_floor_engaged'), 0);
    assert.equal(value(text, 'st_dns_watcher_min_healthy'), 2);
    assert.equal(value(text, 'st_dns_watcher_changes_applied', { action: 'create' }), 3);
    assert.ok((value(text, 'st_dns_watcher_route53_requests') ?? 0) >= 2);
  });

  it('when two of three nodes turned critical, then the file says 1 healthy, the floor engaged, and records kept', () => {
    const text = exports.watcherFloor;
    assert.equal(value(text, 'st_dns_watcher_nodes_healthy'), 1);
    assert.equal(value(text, 'st_dns_watcher_nodes_eligible'), 1);
    assert.equal(value(text, 'st_dns_watcher_floor_engaged'), 1);
    assert.ok((value(text, 'st_dns_watcher_nodes_kept_by_floor') ?? 0) >= 1);
    assert.ok((value(text, 'st_dns_watcher_nodes_in_dns') ?? 0) >= 2, 'the floor keeps at least minHealthy nodes');
    assert.ok(
      (value(text, 'st_dns_watcher_last_success_timestamp_seconds') ?? 0) >=
        (value(exports.watcherHealthy, 'st_dns_watcher_last_success_timestamp_seconds') ?? Infinity),
    );
  });

  it('when the hooks reconciled a fresh host, then the master is tagged, agrees with ROLE, and the missing registration counted as found and fixed', () => {
    const text = exports.hooks;
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const instance = { redis: `${redis.host}:${redis.port}` };
    assert.equal(value(text, 'st_sentinel_hooks_last_run_exit_code'), 0);
    assert.equal(value(text, 'st_sentinel_hooks_redis_role_master', instance), 1);
    assert.equal(value(text, 'st_sentinel_hooks_redis_tagged_master', instance), 1);
    assert.equal(value(text, 'st_sentinel_hooks_redis_tag_matches_role', instance), 1);
    assert.equal(value(text, 'st_sentinel_hooks_redis_check_status', instance), 0);
    assert.equal(value(text, 'st_sentinel_hooks_role_mismatches_found'), 1);
    assert.equal(value(text, 'st_sentinel_hooks_role_mismatches_fixed'), 1);
    assert.equal(value(text, 'st_sentinel_hooks_sentinel_majority'), 1);
    assert.equal(value(exports.hookEvents, 'st_sentinel_hooks_events_total', { event: '+switch-master' }), 1);
  });

  it('when the rules and the dashboard are read, then every metric they name is exported by a node, the watcher or the hooks', () => {
    const exported = new Set([...Object.values(exports)].flatMap((text) => [...exportedNames(text)]));
    const used = new Map<string, string>();
    for (const rule of ruleList()) for (const name of metricNames(rule.expr)) used.set(name, `alert ${rule.alert}`);
    for (const expr of dashboardExpressions()) for (const name of metricNames(expr)) used.set(name, `dashboard: ${expr}`);
    assert.ok(used.size > 30, `only ${used.size} metric names found: the extraction is broken`);
    const missing = [...used].filter(([name]) => !exported.has(name));
    assert.deepEqual(missing, [], 'metrics named but not exported');
  });

  it('when a selector matches a label value (route="/v1/playback-urls", result="hit", event="+switch-master"), then an exported series carries it', () => {
    const samples = [...Object.values(exports)].flatMap((text) => parseExposition(text));
    const expressions = [...ruleList().map((rule) => rule.expr), ...dashboardExpressions()];
    const matchers = expressions.flatMap(equalityMatchers);
    assert.ok(matchers.length >= 3);
    for (const matcher of matchers) {
      const series = samples.filter(
        (s) => (s.name === matcher.name || s.name.startsWith(`${matcher.name}_`)) && s.labels[matcher.label] === matcher.value,
      );
      assert.ok(series.length > 0, `no exported ${matcher.name} with ${matcher.label}="${matcher.value}"`);
    }
  });
});
