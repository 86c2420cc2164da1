// `npm run bench:watcher`: how fast the DNS watcher converges at 10, 100 and 1,000 nodes, and whether
// 1,000 flapping nodes keep it inside Route53's throttling buckets.
//
// For each size, DNS starts with every node published; then 10 % of the nodes turn critical and the
// real `watcher handle` executable is run the way a Consul watch runs it (stdin + CONSUL_INDEX), against
// the Consul double (lock, exclusions, status) and the Route53 double (the old 5 requests/s, the
// strictest limit, PENDING→INSYNC). Printed per size: the plan's compute time (pure function, median
// of 30), Route53 calls per convergence (ChangeResourceRecordSets against the limit-derived minimum,
// and the List pages read), and the time from the handler's start to the change accepted.
//
// Flapping: 1,000 nodes, FLAP_ROUNDS rounds, each round a different half critical and FLAP_HANDLERS
// handlers at once (one per Consul agent's watch), under each throttling model. Printed: Route53 calls
// and their rate, calls throttled (and retried by the SDK), handlers that did not exit 0, and rounds
// after which DNS did not hold exactly the healthy nodes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startConsulDouble } from '../doubles/consul/double.ts';
import { DOCUMENTED_LIMITS, LEGACY_LIMITS, startRoute53Double, type ThrottleLimits } from '../doubles/route53/server.ts';
import { planWithPolicies } from '../watcher/plan/policy.ts';
import { parseHealthService, toInstances } from '../watcher/source/consul-health.ts';
import { BATCH_LIMITS } from '../watcher/provider/batches.ts';

const REPO = join(import.meta.dirname, '..');
const SIZES = [10, 100, 1000];
const FAILING_SHARE = 0.1;
const TARGETS = { planMs: 50, handlerMs: 1000 };
const FLAP_NODES = 1000;
const FLAP_ROUNDS = 30;
const FLAP_HANDLERS = 3;

/** One health/service entry in the agent's format, cloned from the fixture. */
const template = (
  JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'consul', 'health-service-st-api.json'), 'utf8')) as Record<string, unknown>[]
)[0] as {
  Node: { Node: string; Address: string; TaggedAddresses: Record<string, string> };
  Service: { ID: string; Address: string; TaggedAddresses: Record<string, { Address: string; Port: number }> };
  Checks: { Node: string; Status: string; ServiceID: string; Output: string }[];
};

function addressOf(i: number): string {
  return `10.${Math.floor(i / 62_500) % 250}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;
}

function healthStdin(size: number, failing: number, isCritical: (i: number) => boolean = (i) => i < failing): string {
  const entries = Array.from({ length: size }, (_, i) => {
    const entry = structuredClone(template);
    const node = `api-node-${String(i).padStart(4, '0')}`;
    const address = addressOf(i);
    entry.Node.Node = node;
    entry.Node.Address = address;
    entry.Node.TaggedAddresses = { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
    entry.Service.Address = address;
    entry.Service.TaggedAddresses = { lan: { Address: address, Port: 8080 } };
    for (const check of entry.Checks) {
      check.Node = node;
      if (check.ServiceID !== '') check.Status = isCritical(i) ? 'critical' : 'passing';
    }
    return entry;
  });
  return `${JSON.stringify(entries)}\n`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function runHandler(
  env: Record<string, string>,
  stdin: string,
  command: string[],
): Promise<{ code: number; startedAt: number; endedAt: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(command[0] ?? process.execPath, [...command.slice(1), 'handle'], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, startedAt, endedAt: Date.now(), stderr });
    });
    child.stdin.end(stdin);
  });
}

async function measure(size: number, command: string[]) {
  const consul = await startConsulDouble({ checkStagger: false });
  const route53 = await startRoute53Double({ insyncDelayMs: 200, rateLimit: LEGACY_LIMITS });
  try {
    const zoneId = route53.createZone('example.com');
    for (let i = 0; i < size; i += 1) {
      route53.setRecord(zoneId, {
        Name: 'play.example.com.',
        Type: 'A',
        SetIdentifier: `st-api/api-node-${String(i).padStart(4, '0')}/st-api-1`,
        MultiValueAnswer: true,
        TTL: 30,
        ResourceRecords: [{ Value: addressOf(i) }],
      });
    }
    const dir = mkdtempSync(join(tmpdir(), 'st-watcher-bench-'));
    const configFile = join(dir, 'dns-watcher.json');
    writeFileSync(configFile, JSON.stringify({ recordName: 'play.example.com', zoneId, minHealthy: 2, maxDeletesPerRun: size }));
    const failing = Math.round(size * FAILING_SHARE);
    const stdin = healthStdin(size, failing);

    // The plan alone, on the same inputs the handler sees.
    const instances = toInstances(parseHealthService(stdin), 'st-api');
    const current = route53
      .records(zoneId)
      .filter((set) => set.SetIdentifier !== undefined)
      .map((set) => ({
        name: set.Name ?? '',
        type: 'A' as const,
        setIdentifier: set.SetIdentifier ?? '',
        ttl: set.TTL ?? 0,
        values: (set.ResourceRecords ?? []).map((record) => record.Value ?? ''),
      }));
    const planTimes: number[] = [];
    let changed = 0;
    for (let run = 0; run < 30; run += 1) {
      const started = performance.now();
      const plan = planWithPolicies({
        current,
        instances,
        excluded: new Set(),
        policy: {
          recordName: 'play.example.com',
          ttl: 30,
          ownerId: 'st-api',
          minHealthy: 2,
          maxDeletesPerRun: size,
          warningIsHealthy: true,
        },
      });
      planTimes.push(performance.now() - started);
      changed = plan.creates.length + plan.upserts.length + plan.deletes.length;
    }

    const env = {
      ST_DNS_CONFIG: configFile,
      CONSUL_HTTP_ADDR: consul.httpAddr,
      CONSUL_INDEX: '1000',
      AWS_ENDPOINT_URL_ROUTE_53: route53.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDBENCH',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_REGION: 'us-east-1',
    };
    const handler = await runHandler(env, stdin, command);
    if (handler.code !== 0) throw new Error(`handler exited ${handler.code}: ${handler.stderr.slice(-500)}`);
    const calls = route53.calls();
    const changes = calls.filter((call) => call.operation === 'ChangeResourceRecordSets' && call.status === 200);
    const lists = calls.filter((call) => call.operation === 'ListResourceRecordSets');
    const accepted = Math.max(...changes.map((call) => call.at));
    const published = route53.records(zoneId).filter((set) => set.SetIdentifier?.startsWith('st-api/') === true).length;
    if (published !== size - failing) throw new Error(`expected ${size - failing} records after convergence, found ${published}`);
    return {
      size,
      changed,
      planMs: median(planTimes),
      changeCalls: changes.length,
      minimumCalls: Math.ceil(changed / BATCH_LIMITS.records),
      listCalls: lists.length,
      startToAcceptedMs: accepted - handler.startedAt,
      startToExitMs: handler.endedAt - handler.startedAt,
    };
  } finally {
    await consul.stop();
    await route53.stop();
  }
}

/** Round 0: all healthy; round r ≥ 1: the nodes with bit (r - 1) % 10 set are critical (a different half each round). */
const flapCritical = (i: number, round: number): boolean => round > 0 && ((i >> ((round - 1) % 10)) & 1) === 1;

async function flapping(limits: ThrottleLimits, command: string[]) {
  const consul = await startConsulDouble({ checkStagger: false });
  const route53 = await startRoute53Double({ insyncDelayMs: 200, rateLimit: limits });
  try {
    const zoneId = route53.createZone('example.com');
    const dir = mkdtempSync(join(tmpdir(), 'st-watcher-flap-'));
    const configFile = join(dir, 'dns-watcher.json');
    writeFileSync(
      configFile,
      JSON.stringify({ recordName: 'play.example.com', zoneId, minHealthy: 2, maxDeletesPerRun: FLAP_NODES, lockWaitMs: 120_000 }),
    );
    const baseEnv = {
      ST_DNS_CONFIG: configFile,
      CONSUL_HTTP_ADDR: consul.httpAddr,
      AWS_ENDPOINT_URL_ROUTE_53: route53.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDBENCH',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_REGION: 'us-east-1',
    };
    let failedHandlers = 0;
    let mismatchedRounds = 0;
    const started = Date.now();
    for (let round = 0; round <= FLAP_ROUNDS; round += 1) {
      const stdin = healthStdin(FLAP_NODES, 0, (i) => flapCritical(i, round));
      const env = { ...baseEnv, CONSUL_INDEX: String(1000 + round) };
      const handlers = await Promise.all(Array.from({ length: FLAP_HANDLERS }, () => runHandler(env, stdin, command)));
      failedHandlers += handlers.filter((handler) => handler.code !== 0).length;
      const want = Array.from({ length: FLAP_NODES }, (_, i) => i)
        .filter((i) => !flapCritical(i, round))
        .map(addressOf)
        .sort()
        .join(',');
      const have = route53
        .records(zoneId)
        .filter((set) => set.SetIdentifier?.startsWith('st-api/') === true)
        .map((set) => set.ResourceRecords?.[0]?.Value ?? '')
        .sort()
        .join(',');
      if (have !== want) mismatchedRounds += 1;
    }
    const seconds = (Date.now() - started) / 1000;
    const calls = route53.calls();
    return {
      seconds,
      calls: calls.length,
      throttled: calls.filter((call) => call.errorCode === 'Throttling').length,
      failedHandlers,
      mismatchedRounds,
    };
  } finally {
    await consul.stop();
    await route53.stop();
  }
}

async function main(): Promise<void> {
  const compiled = join(REPO, 'dist', 'watcher', 'main.js');
  const runners: { name: string; command: string[] }[] = [
    { name: 'tsx (as in development)', command: [process.execPath, '--import', 'tsx', join(REPO, 'watcher', 'main.ts')] },
  ];
  try {
    readFileSync(compiled);
    runners.push({ name: 'compiled (npm run build; as in production)', command: [process.execPath, compiled] });
  } catch {
    process.stdout.write('note: dist/ not built; run `npm run build` first to also measure the compiled handler\n');
  }
  process.stdout.write(`watcher bench — node ${process.version}; 10 % of the nodes turn critical; Route53 double at 5 req/s\n`);
  for (const runner of runners) {
    process.stdout.write(`\nhandler: ${runner.name}\n`);
    process.stdout.write('nodes  changed  plan ms (≤50)  Change calls (min)  List calls  start→accepted ms (≤1000)  start→exit ms\n');
    for (const size of SIZES) {
      const r = await measure(size, runner.command);
      const planOk = r.planMs <= TARGETS.planMs ? 'PASS' : 'MISS';
      const callsOk = r.changeCalls === r.minimumCalls ? 'PASS' : 'MISS';
      const timeOk = r.startToAcceptedMs <= TARGETS.handlerMs ? 'PASS' : 'MISS';
      process.stdout.write(
        `${String(r.size).padStart(5)}  ${String(r.changed).padStart(7)}  ${r.planMs.toFixed(2).padStart(8)} ${planOk}  ${String(r.changeCalls).padStart(6)} (${r.minimumCalls}) ${callsOk}  ${String(r.listCalls).padStart(10)}  ${String(r.startToAcceptedMs).padStart(14)} ${timeOk}  ${String(r.startToExitMs).padStart(13)}\n`,
      );
    }
  }

  // Production runs the compiled handler when there is one.
  const flapRunner = runners.at(-1) ?? runners[0];
  if (flapRunner === undefined) return;
  const models: { name: string; limits: ThrottleLimits }[] = [
    { name: 'documented buckets (account 50 / 10 per s, per operation 50 / 10)', limits: DOCUMENTED_LIMITS },
    // AWS's change-throughput figures are not in our sources: this row is an assumption, not AWS.
    {
      name: 'documented + ASSUMED change bucket 1,000 / 100 per s',
      limits: { ...DOCUMENTED_LIMITS, changes: { capacity: 1000, refillPerSecond: 100 } },
    },
    { name: 'legacy 5 requests/s', limits: LEGACY_LIMITS },
  ];
  process.stdout.write(
    `\nflapping: ${FLAP_NODES} nodes, ${FLAP_ROUNDS} rounds after the first publish, half of them flipping each round, ${FLAP_HANDLERS} handlers at once; handler: ${flapRunner.name}\n`,
  );
  process.stdout.write(
    'throttling model                                                    seconds  calls  calls/s  throttled  handlers not 0  rounds DNS ≠ health\n',
  );
  for (const model of models) {
    const r = await flapping(model.limits, flapRunner.command);
    process.stdout.write(
      `${model.name.padEnd(68)}${r.seconds.toFixed(1).padStart(7)}  ${String(r.calls).padStart(5)}  ${(r.calls / r.seconds).toFixed(1).padStart(7)}  ${String(r.throttled).padStart(9)}  ${String(r.failedHandlers).padStart(14)}  ${String(r.mismatchedRounds).padStart(19)}\n`,
    );
  }
}

await main();
