// Redis master discovery through Consul DNS, against real redis-servers and the Consul double's
// DNS: the node finds the master by name, follows a failover (promotion, kill -9) without a
// restart and without failing a play, and serves from the catalog while DNS has no answer.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../api/config.ts';
import { RedisStuckError } from '../../api/redis/client.ts';
import { RedisDiscovery } from '../../api/redis/discovery.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { createLogger } from '../../api/logger.ts';
import { Metrics } from '../../api/metrics.ts';
import { startConsulDouble, type ConsulDouble } from '../../doubles/consul/double.ts';
import { ANY_LAG, statusApartFromLag, type DeepHealth } from '../../testkit/health.ts';
import { LOOPBACK, sleep, waitFor } from '../../testkit/processes.ts';
import { startRedis, withAdminConnection, type RedisServer } from '../../testkit/redis.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';

const MASTER_NAME = 'master.redis.service.consul';
/**
 * How long a switch may take once Consul answers with the new master (the 2 s back-off cap plus a
 * look-up when the machine is idle; 12.5 s seen at a load average of 10 on 2 cores). Generous for a loaded machine, and half of PAIR_REFRESH_MS:
 * the switch reasons show which signal moved the node.
 */
const SWITCH_BOUND_MS = 30_000;
/** The pairs' periodic look-up: too rare to be what moves a node in these tests. */
const PAIR_REFRESH_MS = 60_000;

/**
 * Tight client timeouts, as a failover wants them. Tests not about timeouts pass RELAXED: on a busy
 * machine a stall past the 150 ms command deadline flags a healthy connection stuck (see
 * api-under-failover.test.ts), which is not what they test.
 */
const TIGHT = { commandTimeoutMs: 50, connectTimeoutMs: 300 };
const RELAXED = { commandTimeoutMs: 1000, connectTimeoutMs: 2000 };

function discoveryOverrides(
  dnsPort: number,
  discovery: Record<string, unknown> = {},
  client: { commandTimeoutMs: number; connectTimeoutMs: number } = TIGHT,
): Record<string, unknown> {
  return {
    redis: { discovery: { name: MASTER_NAME, dnsServer: `${LOOPBACK}:${dnsPort}`, useSrv: true, ...discovery }, ...client },
    // Probes bounded by the command deadline, not cut short before it.
    health: { probeTimeoutMs: 2 * client.commandTimeoutMs + 1000 },
    // Continuous plays by one viewer must not run into the per-minute budget; the counter is still written.
    rateLimit: { playsPerMinute: 100_000 },
  };
}

/** Registers the node's `redis` instance with one tag, as the sentinel hooks do; re-registering replaces it. */
async function registerRedis(consul: ConsulDouble, node: string, server: RedisServer, tag: 'master' | 'replica'): Promise<void> {
  // Retried (it is idempotent): a stalled machine can lose a keep-alive connection to the double.
  const response = await waitFor(
    () =>
      fetch(`${consul.node(node).agentAddr}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify({ Name: 'redis', ID: 'redis', Tags: [tag], Address: server.host, Port: server.port }),
        signal: AbortSignal.timeout(5000),
      }),
    { timeoutMs: 15_000, intervalMs: 100, what: `registering redis on ${node} as ${tag}` },
  );
  assert.equal(response.status, 200, await response.text());
}

async function health(node: TestNode): Promise<{ status: number; body: string }> {
  const response = await fetch(`${node.baseUrl}/health/deep`, { signal: AbortSignal.timeout(3000) });
  return { status: response.status, body: await response.text() };
}

/** Sum of a counter's values, or by label value when `label` is given. */
async function counter(node: TestNode, name: string): Promise<number>;
async function counter(node: TestNode, name: string, label: string): Promise<Record<string, number>>;
async function counter(node: TestNode, name: string, label?: string): Promise<number | Record<string, number>> {
  const metric = await node.service.metrics.registry.getSingleMetric(name)!.get();
  if (label === undefined) return metric.values.reduce((sum, value) => sum + value.value, 0);
  return Object.fromEntries(metric.values.map((value) => [String(value.labels[label]), value.value]));
}

const masterSwitches = (node: TestNode): Promise<number> => counter(node, 'st_api_redis_master_switches_total');

/** Plays without pause from a few concurrent clients, and health polled alongside, until stopped. */
function startTraffic(node: TestNode): {
  stop(): Promise<{
    statuses: Map<number, number>;
    failures: string[];
    plays: number;
    health: { at: number; status: number; body: string }[];
  }>;
} {
  const statuses = new Map<number, number>();
  /** The first few plays that got no answer at all, for the assertion message. */
  const failures: string[] = [];
  const healthLog: { at: number; status: number; body: string }[] = [];
  let running = true;
  // Bounded even when a failed assertion skips stop(): the file must still exit.
  const deadline = Date.now() + 120_000;
  const contents = ['tt-demo-0001', 'tt-demo-0002', 'tt-demo-0003'];
  const worker = async (index: number): Promise<void> => {
    for (let n = 0; running && n < 100_000 && Date.now() < deadline; n++) {
      const contentId = contents[(index + n) % contents.length]!;
      let status: number;
      try {
        const response = await node.play({ contentId, device: 'web' }, node.tokenFor('premium-user'));
        await response.arrayBuffer();
        status = response.status;
      } catch (error) {
        // A refused or hung request counts against the node as much as a 5xx.
        status = 0;
        if (failures.length < 5) failures.push(`${new Date().toISOString()} ${String(error)}`);
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  const watcher = async (): Promise<void> => {
    while (running && Date.now() < deadline) {
      const at = Date.now();
      try {
        healthLog.push({ at, ...(await health(node)) });
      } catch {
        healthLog.push({ at, status: 0, body: 'no answer' });
      }
      await sleep(50);
    }
  };
  const tasks = [...[0, 1, 2, 3].map(worker), watcher()];
  return {
    async stop() {
      running = false;
      await Promise.all(tasks);
      return { statuses, failures, plays: [...statuses.values()].reduce((a, b) => a + b, 0), health: healthLog };
    },
  };
}

/** Longest stretch of non-passing health answers (a lag warning set aside), in ms; one still open at the end counts up to the last answer. */
function longestWarning(log: readonly (DeepHealth & { at: number })[]): number {
  let longest = 0;
  let since: number | undefined;
  for (const entry of log) {
    if (statusApartFromLag(entry) !== 200) since ??= entry.at;
    else if (since !== undefined) {
      longest = Math.max(longest, entry.at - since);
      since = undefined;
    }
  }
  const last = log.at(-1);
  if (since !== undefined && last !== undefined) longest = Math.max(longest, last.at - since);
  return longest;
}

/**
 * Waits until a write from the node lands on `server`: the rights key of one play is deleted there,
 * then a play must put it back. Only the master accepts writes, so it is back only if the node
 * writes to this server.
 */
async function waitForWriteOn(node: TestNode, server: RedisServer, timeoutMs: number): Promise<number> {
  const key = 'st-api:v1:rights:premium-user:tt-demo-0003';
  const started = Date.now();
  await withAdminConnection(server, (redis) => redis.del(key));
  await waitFor(
    async () => {
      assert.equal((await node.play({ contentId: 'tt-demo-0003', device: 'web' }, node.tokenFor('premium-user'))).status, 200);
      return (await withAdminConnection(server, (redis) => redis.exists(key))) === 1;
    },
    { timeoutMs, intervalMs: 50, what: `a write from the node on redis :${server.port}` },
  );
  return Date.now() - started;
}

async function waitForHealth(node: TestNode, pattern: RegExp, timeoutMs: number): Promise<string> {
  return waitFor(
    async () => {
      const { body } = await health(node);
      return pattern.test(body) ? body : undefined;
    },
    { timeoutMs, intervalMs: 25, what: `/health/deep to match ${pattern}` },
  );
}

/** Until health passes (a lag warning set aside: one stall of a busy machine) with the node on a master. */
async function waitForPassingOnMaster(node: TestNode, timeoutMs: number): Promise<string> {
  return waitFor(
    async () => {
      const answer = await health(node);
      return statusApartFromLag(answer) === 200 && /redis=ok\([\d.]+ms,master\)/.test(answer.body) ? answer.body : undefined;
    },
    { timeoutMs, intervalMs: 25, what: '/health/deep to pass with redis=ok(…,master)' },
  );
}

/**
 * Right after Consul re-tagged the master under traffic: waits for the node to switch and to pass
 * health on the new master, stops the traffic, and checks that every play answered 200 and that
 * health only ever warned.
 */
async function followRetag(
  node: TestNode,
  traffic: ReturnType<typeof startTraffic>,
): Promise<{ switchMs: number; plays: number; healthLog: (DeepHealth & { at: number })[] }> {
  const retagged = Date.now();
  await waitFor(async () => (await masterSwitches(node)) === 1, {
    timeoutMs: SWITCH_BOUND_MS,
    intervalMs: 10,
    what: 'the node to switch masters',
  });
  const switchMs = Date.now() - retagged;
  await waitForPassingOnMaster(node, 10_000);
  await sleep(300);
  const { statuses, failures, plays, health: healthLog } = await traffic.stop();
  assert.deepEqual([...statuses.keys()], [200], `every play answered 200: ${JSON.stringify([...statuses])} ${failures.join('; ')}`);
  assert.ok(plays > 20, `plays kept flowing (${plays})`);
  assert.ok(
    healthLog.every((entry) => entry.status === 200 || entry.status === 429),
    'health was never critical',
  );
  return { switchMs, plays, healthLog };
}

/** A master A with a replica B, both registered in the Consul double; replication in sync. */
async function startPair(consul: ConsulDouble): Promise<{ a: RedisServer; b: RedisServer }> {
  const a = await startRedis();
  const b = await startRedis({ extraArgs: ['--replicaof', a.host, String(a.port)] });
  await waitFor(async () => ((await withAdminConnection(b, (redis) => redis.call('ROLE'))) as unknown[])[3] === 'connected', {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: 'the replica to sync',
  });
  await registerRedis(consul, 'redis-a', a, 'master');
  await registerRedis(consul, 'redis-b', b, 'replica');
  return { a, b };
}

/**
 * Within a describe: a master/replica pair registered in Consul and a node that discovers it,
 * started before and stopped after that describe's tests.
 */
function pairWithNode(options: { waitUntilConnected: boolean }): { servers(): { a: RedisServer; b: RedisServer }; node(): TestNode } {
  let servers: { a: RedisServer; b: RedisServer } | undefined;
  let node: TestNode | undefined;
  before(async () => {
    servers = await startPair(consul);
    node = await startTestNode({ overrides: discoveryOverrides(consul.dnsPort, { refreshIntervalMs: PAIR_REFRESH_MS }) });
    if (options.waitUntilConnected) await waitForHealth(node, /redis=ok/, 15_000);
  });
  after(async () => {
    await node?.close();
    await Promise.all([servers?.a.stop(), servers?.b.stop()]);
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('used before the describe started it');
    return value;
  };
  return { servers: () => started(servers), node: () => started(node) };
}

let consul: ConsulDouble;
before(async () => {
  consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
  await consul.addNode('redis-a', LOOPBACK);
  await consul.addNode('redis-b', LOOPBACK);
});
after(async () => {
  await consul.stop();
});

describe('when the node finds Redis through Consul DNS', () => {
  const setup = pairWithNode({ waitUntilConnected: false });

  it('then it connects to the master the SRV record names, health says master, and plays are cached there', async () => {
    const node = setup.node();
    const servers = setup.servers();
    // Lag may warn after one stall of a busy machine; every other probe must pass.
    const body = await waitForPassingOnMaster(node, 5000);
    assert.match(
      body,
      new RegExp(String.raw`^(?:ok|warn) node=serving mysql=embedded redis=ok\([\d.]+ms,master\) keys=ok\(4\) ${ANY_LAG}$`),
    );
    await waitForWriteOn(node, servers.a, 3000);
    assert.equal(await masterSwitches(node), 0);
  });
});

/**
 * With writes on A and plays running, `failover` moves the master to B and re-tags Consul; the node
 * must follow the re-tag itself (not the periodic look-up) and write on B.
 */
async function failOverUnderTraffic(
  setup: ReturnType<typeof pairWithNode>,
  failover: (servers: { a: RedisServer; b: RedisServer }, node: TestNode) => Promise<void>,
): Promise<{ switchMs: number; plays: number; longestWarningMs: number; writeMs: number; reasons: string }> {
  const node = setup.node();
  const servers = setup.servers();
  await waitForWriteOn(node, servers.a, 3000);
  const traffic = startTraffic(node);
  await sleep(300);
  await failover(servers, node);
  const { switchMs, plays, healthLog } = await followRetag(node, traffic);
  const longestWarningMs = longestWarning(healthLog);
  const writeMs = await waitForWriteOn(node, servers.b, 2000);
  const reasons = await counter(node, 'st_api_redis_master_switches_total', 'reason');
  assert.equal(reasons['refresh'] ?? 0, 0, `moved by the failover itself, not the periodic look-up: ${JSON.stringify(reasons)}`);
  return { switchMs, plays, longestWarningMs, writeMs, reasons: JSON.stringify(reasons) };
}

describe('when the replica is promoted and Consul re-tagged (a failover)', () => {
  const setup = pairWithNode({ waitUntilConnected: true });

  it('then plays keep answering 200, the node writes to the new master without a restart, and health passes again', async () => {
    const { switchMs, plays, longestWarningMs, writeMs, reasons } = await failOverUnderTraffic(setup, async ({ a, b }) => {
      // What Sentinel does: promote B, turn A into its replica. The hooks re-tag Consul a moment later.
      await withAdminConnection(b, (redis) => redis.call('REPLICAOF', 'NO', 'ONE'));
      await withAdminConnection(a, (redis) => redis.call('REPLICAOF', b.host, String(b.port)));
      await sleep(300);
      await registerRedis(consul, 'redis-a', a, 'replica');
      await registerRedis(consul, 'redis-b', b, 'master');
    });
    assert.ok(longestWarningMs < SWITCH_BOUND_MS + 1000, `health warned for ${longestWarningMs} ms`);
    console.log(
      `# promote: switched ${switchMs} ms after the re-tag (${reasons}); ${plays} plays, all 200; longest warning ${longestWarningMs} ms; write on B confirmed in ${writeMs} ms`,
    );
  });
});

describe('when the master is killed (kill -9) and the replica promoted', () => {
  const setup = pairWithNode({ waitUntilConnected: true });

  it('then plays keep answering 200, the node moves to the new master, and health passes again', async () => {
    const { switchMs, plays, longestWarningMs, writeMs, reasons } = await failOverUnderTraffic(setup, async ({ a, b }, node) => {
      await a.kill();
      // Sentinel needs about two seconds to agree; keep it shorter here, the order is what matters.
      await sleep(500);
      const whileDown = await health(node);
      assert.equal(whileDown.status, 429);
      assert.match(whileDown.body, /redis=(down|not-master)\(/);
      await withAdminConnection(b, (redis) => redis.call('REPLICAOF', 'NO', 'ONE'));
      await registerRedis(consul, 'redis-b', b, 'master');
      await registerRedis(consul, 'redis-a', a, 'replica');
    });
    console.log(
      `# kill -9: switched ${switchMs} ms after the re-tag (${reasons}); ${plays} plays, all 200; longest warning ${longestWarningMs} ms (includes the 500 ms before promotion); write on B confirmed in ${writeMs} ms`,
    );
  });
});

describe('when the connection discovery gave out is reported stuck (a command that never settles)', () => {
  let server: RedisServer;
  let discovery: RedisDiscovery;
  const metrics = new Metrics({ defaultMetrics: false });
  before(async () => {
    server = await startRedis();
    const response = await fetch(`${consul.node('redis-a').agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'redis-stuck', ID: 'redis-stuck', Tags: ['master'], Address: server.host, Port: server.port }),
    });
    assert.equal(response.status, 200);
    discovery = new RedisDiscovery({
      discovery: {
        name: 'master.redis-stuck.service.consul',
        dnsServer: `${LOOPBACK}:${consul.dnsPort}`,
        port: 'srv',
        resolveTimeoutMs: 2000,
        refreshIntervalMs: 60_000,
        retryMinMs: 50,
        retryMaxMs: 500,
      },
      // The stuck report is made by hand below; no real timeout is what is tested.
      client: { db: 0, ...RELAXED },
      metrics,
      logger: createLogger({ level: 'silent', program: 'st-api-test' }),
    });
    discovery.start();
  });
  after(async () => {
    await discovery.close();
    await server.stop();
  });

  it('then it drops that connection and gives out a fresh one to the master, without waiting for the refresh', async () => {
    const stuck = await waitFor(() => discovery.client(), { timeoutMs: 15_000, intervalMs: 10, what: 'the first connection' });
    discovery.reportError(new RedisStuckError('command not settled within 150 ms'), stuck);
    assert.equal(discovery.client(), undefined, 'not given out once reported');
    assert.equal(discovery.unavailable(), 'down(stuck)');
    // Far below the 60 s refresh: only the report can have brought it.
    const fresh = await waitFor(() => discovery.client(), { timeoutMs: 15_000, intervalMs: 10, what: 'a fresh connection' });
    assert.notEqual(fresh, stuck);
    await waitFor(() => stuck.status === 'end', { timeoutMs: 5000, intervalMs: 10, what: 'the stuck connection to be closed' });
    assert.equal(await fresh.set('st-api:test:fresh', '1'), 'OK');
    // Errors the server sends are not the connection's fault: it stays.
    discovery.reportError(new Error('ERR unknown command'), fresh);
    assert.equal(discovery.client(), fresh);
  });
});

describe('when DNS has no answer for the master', () => {
  let server: RedisServer;
  let node: TestNode;
  before(async () => {
    server = await startRedis();
    // Nothing is registered with the tag yet: Consul answers NXDOMAIN.
    node = await startTestNode({ overrides: discoveryOverrides(consul.dnsPort, { name: 'master.redis-late.service.consul' }, RELAXED) });
  });
  after(async () => {
    await node.close();
    await server.stop();
  });

  it('then plays answer 200 from the catalog, health warns that it is resolving, and the master is used once it appears', async () => {
    for (const contentId of ['tt-demo-0001', 'tt-demo-0002']) assert.equal((await node.play({ contentId, device: 'web' })).status, 200);
    const degraded = await health(node);
    assert.equal(degraded.status, 429);
    assert.match(degraded.body, /^warn .*redis=down\(resolving:enotfound\)/);

    const response = await fetch(`${consul.node('redis-a').agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'redis-late', ID: 'redis-late', Tags: ['master'], Address: server.host, Port: server.port }),
    });
    assert.equal(response.status, 200);
    await waitForPassingOnMaster(node, SWITCH_BOUND_MS);
    await waitForWriteOn(node, server, 2000);
  });
});

describe('when the DNS server does not answer at all', () => {
  const DNS_TIMEOUT_MS = 8000;
  let silent: Socket;
  let node: TestNode;
  before(async () => {
    // A UDP port that swallows every query: a hung or firewalled agent, not a refused one.
    silent = createSocket('udp4');
    silent.on('message', () => undefined);
    await new Promise<void>((resolve) => silent.bind(0, LOOPBACK, resolve));
    // A DNS timeout far longer than a play may take: a play that waited on the lookup would show.
    node = await startTestNode({ overrides: discoveryOverrides(silent.address().port, { resolveTimeoutMs: DNS_TIMEOUT_MS }) });
  });
  after(async () => {
    await node.close();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('then plays answer 200 without waiting on DNS, and health warns', async () => {
    // The node's first look-up started with the node and cannot end before DNS_TIMEOUT_MS.
    const started = Date.now();
    for (const contentId of ['tt-demo-0001', 'tt-demo-0002', 'tt-demo-0003']) {
      const response = await node.play({ contentId, device: 'web' }, node.tokenFor('premium-user'));
      assert.equal(response.status, 200);
      const tookMs = Date.now() - started;
      assert.ok(
        tookMs < DNS_TIMEOUT_MS / 2,
        `answered ${tookMs} ms after the first play, against a ${DNS_TIMEOUT_MS} ms DNS timeout: it waited on DNS`,
      );
    }
    const degraded = await waitForHealth(node, /redis=down\(resolving:etimeout\)/, DNS_TIMEOUT_MS + 5000);
    assert.match(degraded, /^warn /);
  });
});

describe('when DNS goes away while the node holds a working master', () => {
  let server: RedisServer;
  let dns: ConsulDouble;
  let node: TestNode;
  before(async () => {
    server = await startRedis();
    dns = await startConsulDouble({ checkUpdateIntervalMs: 0 });
    await dns.addNode('redis-a', LOOPBACK);
    const response = await fetch(`${dns.node('redis-a').agentAddr}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'redis', ID: 'redis', Tags: ['master'], Address: server.host, Port: server.port }),
    });
    assert.equal(response.status, 200);
    // Not about stuck connections: a stall of a busy machine must not make the node drop the
    // connection it can no longer replace (DNS is gone), so a deadline no stall reaches.
    node = await startTestNode({ overrides: discoveryOverrides(dns.dnsPort, { refreshIntervalMs: 200, resolveTimeoutMs: 200 }, RELAXED) });
    await waitForHealth(node, /redis=ok/, 15_000);
  });
  after(async () => {
    await node.close();
    await server.stop();
  });

  it('then it keeps the master it has: plays are still cached and health still passes', async () => {
    await dns.stop();
    await waitFor(async () => ((await counter(node, 'st_api_redis_master_lookups_total', 'result'))['dns_error'] ?? 0) >= 2, {
      timeoutMs: 3000,
      intervalMs: 50,
      what: 'two failed look-ups',
    });
    const kept = await health(node);
    // Lag may warn after one stall of a busy machine; Redis must still pass.
    assert.equal(statusApartFromLag(kept), 200, kept.body);
    assert.match(kept.body, /redis=ok\([\d.]+ms,master\)/);
    await waitForWriteOn(node, server, 2000);
  });
});

describe('when Consul moves the master while the old one still answers as master (a forced failover)', () => {
  let a: RedisServer;
  let b: RedisServer;
  let node: TestNode;
  before(async () => {
    // Two masters: Sentinel's forced failover leaves the old one writable for seconds, so neither
    // READONLY nor a disconnect tells the node; only the periodic look-up does.
    [a, b] = await Promise.all([startRedis(), startRedis()]);
    await registerRedis(consul, 'redis-a', a, 'master');
    await registerRedis(consul, 'redis-b', b, 'replica');
    // Not about stuck connections: a command deadline (2 × 1000 + 50 ms) and a probe timeout no
    // stall of a busy machine reaches, so any warning here is the switch's.
    node = await startTestNode({ overrides: discoveryOverrides(consul.dnsPort, { refreshIntervalMs: 500 }, RELAXED) });
    await waitForHealth(node, /redis=ok/, 15_000);
    await waitForWriteOn(node, a, 3000);
  });
  after(async () => {
    await node.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('then the node follows Consul within the refresh interval, without a warning', async () => {
    const traffic = startTraffic(node);
    await registerRedis(consul, 'redis-b', b, 'master');
    await registerRedis(consul, 'redis-a', a, 'replica');
    const retagged = Date.now();
    // Only the periodic look-up (every 500 ms) can tell the node; 5 s leaves a busy machine room.
    await waitFor(async () => (await masterSwitches(node)) === 1, { timeoutMs: 5000, intervalMs: 10, what: 'the node to switch masters' });
    const switchMs = Date.now() - retagged;
    const { statuses, failures, health: healthLog } = await traffic.stop();
    assert.deepEqual([...statuses.keys()], [200], `every play answered 200: ${JSON.stringify([...statuses])} ${failures.join('; ')}`);
    // The load runs in the node's own process: lag may warn after a stall; Redis never may.
    const warned = healthLog.filter((entry) => statusApartFromLag(entry) !== 200);
    assert.deepEqual(
      warned.map((entry) => entry.body),
      [],
      'health kept passing',
    );
    assert.deepEqual(await counter(node, 'st_api_redis_master_switches_total', 'reason'), { refresh: 1 });
    await waitForWriteOn(node, b, 2000);
    console.log(`# forced: switched ${switchMs} ms after the re-tag (refresh every 500 ms)`);
  });
});

describe('when the redis section of the configuration is wrong', () => {
  const parse = (redis: unknown): string[] => {
    try {
      parseConfig({ ...embeddedDemo().rawConfig, redis }, {});
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  };

  it('then every bad key is named, and both forms are accepted', () => {
    assert.deepEqual(parse({ host: '10.0.0.5' }), []);
    assert.deepEqual(parse({ discovery: { name: MASTER_NAME, dnsServer: '127.0.0.1:8600', useSrv: true } }), []);
    assert.deepEqual(parse({ discovery: { name: MASTER_NAME, port: 6380 } }), []);
    const problems = parse({
      port: 6379,
      discovery: {
        name: 'not a name',
        dnsServer: 'consul.local:8600',
        useSrv: true,
        port: 6379,
        retryMinMs: 5000,
        retryMaxMs: 1000,
        extra: 1,
      },
    });
    assert.deepEqual(problems.map((problem) => problem.split(':')[0]).sort(), [
      'redis.discovery',
      'redis.discovery.dnsServer',
      'redis.discovery.name',
      'redis.discovery.port',
      'redis.discovery.retryMinMs',
      'redis.port',
    ]);
    assert.deepEqual(parse({}), ['redis.host: give either host (a fixed address) or discovery (a DNS name for the master)']);
    assert.deepEqual(parse({ host: 'redis', discovery: { name: MASTER_NAME } }), [
      'redis.discovery: give either host or discovery, not both',
    ]);
  });

  it('then a parsed discovery section carries the port source and the defaults', () => {
    const config = parseConfig({ ...embeddedDemo().rawConfig, redis: { discovery: { name: MASTER_NAME, useSrv: true } } }, {});
    assert.deepEqual(config.redis?.discovery, {
      name: MASTER_NAME,
      port: 'srv',
      resolveTimeoutMs: 500,
      refreshIntervalMs: 5000,
      retryMinMs: 100,
      retryMaxMs: 2000,
    });
  });
});
