// npm run sandbox: the whole system of the chaos suite (testkit/chaos/system.ts) on loopback, left
// running for a person to watch a failover: it prints where everything is and the on-call commands
// ready to paste, then shows a live view (a screen on a terminal, else one status line per change)
// until Ctrl-C, which stops every process it started.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startReconcileTimer } from '../chaos/run.ts';
import { KV_PREFIX, RECORD_NAME, SERVICE, startChaosSystem, type ChaosSystem } from '../chaos/system.ts';
import { errorMessage, procState, sleep, waitFor } from '../processes.ts';
import { renderScreen, SnapshotReader, statusLine, type Snapshot } from './view.ts';

const USAGE = `Usage: npm run sandbox [-- --max-hours H]

Starts the whole system on loopback, as the chaos suite does: three st-api nodes (processes),
MariaDB with the demo catalog, Redis (master + 2 replicas) with three Sentinels running the real
hooks, the Consul double (an agent per node running the production check and watch, i.e. the real
watcher) with a watcher reconcile timer, and the Route53 double behind the real AWS SDK. Prints
where everything is and the on-call commands ready to paste, then shows a live view: nodes and their
health, what Route53 answers for ${RECORD_NAME}, the Redis master according to the Sentinels and to
Consul, the watcher's state. On a terminal the view is redrawn every second; otherwise one status
line is printed per change. Ctrl-C stops everything.

  --max-hours H   stop by itself after H hours (default 8, at most 72)
  -h, --help      this text

Exit codes: 0 stopped (Ctrl-C, SIGTERM, q, or --max-hours), 2 usage, 3 the system did not start.
`;

const START_TIMEOUT_MS = 240_000;
const PUBLISHED_TIMEOUT_MS = 120_000;
const VIEW_INTERVAL_MS = 1000;
const STOP_TIMEOUT_MS = 90_000;

function parse(argv: readonly string[]): { maxMs: number } | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { 'max-hours': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    return errorMessage(error);
  }
  if (values.help === true) return '';
  const hours = values['max-hours'] === undefined ? 8 : Number(values['max-hours']);
  if (!Number.isFinite(hours) || hours <= 0 || hours > 72) return `--max-hours must be a number in (0, 72], got ${values['max-hours']}`;
  return { maxMs: hours * 3_600_000 };
}

const parsed = parse(process.argv.slice(2));
if (typeof parsed === 'string') {
  if (parsed !== '') process.stderr.write(`sandbox: ${parsed}\n\n`);
  (parsed === '' ? process.stdout : process.stderr).write(USAGE);
  process.exit(parsed === '' ? 0 : 2);
}
const { maxMs } = parsed;

const startedAt = Date.now();
const interactive = process.stdout.isTTY === true && process.stdin.isTTY === true;
const say = (line: string): void => void process.stdout.write(`sandbox: ${line}\n`);
const stamp = (line: string): void => say(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}`);

// Ctrl-C while starting or running: stop everything in order. A second Ctrl-C leaves at once (the
// testkit's exit hook still kills every server it spawned, by pid).
let stopRequested = false;
let wakeUp: () => void = () => undefined;
const requestStop = (why: string): void => {
  if (stopRequested) {
    process.stderr.write('sandbox: leaving now\n');
    process.exit(130);
  }
  stopRequested = true;
  if (!interactive) say(`${why}: stopping everything (again to leave at once)`);
  wakeUp();
};
process.on('SIGINT', () => requestStop('interrupted'));
process.on('SIGTERM', () => requestStop('terminated'));
process.on('SIGHUP', () => requestStop('hung up'));

/** Sleeps up to `ms`, returning early when a stop is requested. */
function pause(ms: number): Promise<void> {
  if (stopRequested) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      wakeUp = () => undefined;
      resolve();
    }
    wakeUp = done;
  });
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

function has(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/** Every pid this run printed or started, to prove at the end that none is left. */
const knownPids = new Set<number>();
function pidOf(read: () => number): number | null {
  try {
    const pid = read();
    knownPids.add(pid);
    return pid;
  } catch {
    return null;
  }
}

async function writeEnvFile(system: ChaosSystem): Promise<{ file: string; env: Record<string, string> }> {
  const watcherEnv = system.watcherEnv(system.consul.httpAddr);
  const env: Record<string, string> = {
    CONSUL_HTTP_ADDR: system.consul.httpAddr,
    ST_DNS_CONFIG: watcherEnv['ST_DNS_CONFIG'] ?? '',
    AWS_ENDPOINT_URL_ROUTE_53: system.route53.endpoint,
    AWS_ACCESS_KEY_ID: watcherEnv['AWS_ACCESS_KEY_ID'] ?? '',
    AWS_SECRET_ACCESS_KEY: watcherEnv['AWS_SECRET_ACCESS_KEY'] ?? '',
    AWS_REGION: 'us-east-1',
    // The AWS CLI v1 reads this one, not AWS_REGION.
    AWS_DEFAULT_REGION: 'us-east-1',
  };
  const file = join(system.dir, 'sandbox.env');
  await writeFile(
    file,
    `${Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('\n')}\n`,
  );
  return { file, env };
}

function describeSystem(system: ChaosSystem, envFile: string): string {
  const consul = system.consul.httpAddr;
  const cluster = system.redis.cluster;
  const master = cluster.redis[0];
  const lines: string[] = [];
  const add = (...more: string[]): void => void lines.push(...more);
  const port = system.apiNodes[0]?.port ?? 0;
  add('', 'Where everything is (all on loopback):', '');
  for (const [i, node] of system.apiNodes.entries()) {
    const pid = pidOf(() => node.server.pid);
    add(`  st-api node ${i + 1}  ${node.name}  ${node.baseUrl}  pid ${pid}  (Consul agent ${node.agent.agentAddr})   kill it: kill ${pid}`);
  }
  add(`  Consul double    HTTP API ${consul}  DNS 127.0.0.1:${system.consul.dnsPort} (udp)  service ${SERVICE}, KV ${KV_PREFIX}/`);
  add(`  Route53 double   endpoint ${system.route53.endpoint}  hosted zone ${system.zoneId} (example.com), record ${RECORD_NAME}`);
  for (const instance of cluster.redis) {
    const pid = pidOf(() => instance.pid);
    add(`  Redis            ${instance.key}  pid ${pid}${instance === master ? '  (master at start)' : '  (replica at start)'}`);
  }
  for (const [i, sentinel] of cluster.sentinels.entries())
    add(
      `  Sentinel ${i + 1}       127.0.0.1:${sentinel.port}  pid ${pidOf(() => system.sentinels.pid(i))}  (master name ${cluster.masterName})`,
    );
  add(`  MariaDB          127.0.0.1:${system.mariadb.port}  pid ${pidOf(() => system.mariadb.pid)}  (database st_catalog)`);
  add(`  this sandbox     pid ${process.pid}   logs and configuration: ${system.dir}`);
  const sentinelPort = cluster.sentinels[0]?.port ?? 0;
  const token = system.demo.tokenFor('demo-user', 12 * 3600);
  const exampleNode = system.apiNodes[1]?.name ?? 'api-node-2';
  add(
    '',
    'Play (any node; the token is valid 12 h):',
    `  curl -sS -X POST ${system.apiNodes[0]?.baseUrl ?? `http://127.0.0.1:${port}`}/v1/playback-urls \\`,
    `    -H 'Authorization: Bearer ${token}' \\`,
    `    -H 'Content-Type: application/json' -d '{"contentId":"tt-demo-0001","device":"web","quality":"auto"}'`,
    '',
    'On-call commands (paste in another terminal, in this directory; the first line sets the environment):',
    `  . ${envFile}    # CONSUL_HTTP_ADDR, ST_DNS_CONFIG, AWS_ENDPOINT_URL_ROUTE_53 and demo AWS credentials`,
    `  curl -sS $CONSUL_HTTP_ADDR/v1/health/service/${SERVICE} | jq '.[] | {node: .Node.Node, checks: [.Checks[] | {CheckID, Status, Output}]}'`,
    `  curl -sS "$CONSUL_HTTP_ADDR/v1/catalog/service/redis?tag=master" | jq '.[] | {Node, ServiceAddress, ServicePort, ServiceTags}'`,
    `  curl -sS $CONSUL_HTTP_ADDR/v1/kv/${KV_PREFIX}/status?raw | jq .                 # the watcher's last run`,
    '  npm run -s watcher -- status                                       # per node: health, excluded?, in DNS?',
    '  npm run -s watcher -- plan                                         # what a reconcile would change',
    `  aws route53 list-resource-record-sets --hosted-zone-id ${system.zoneId} --query "ResourceRecordSets[?Name=='${RECORD_NAME}.']"`,
    `  curl -sS ${system.route53.endpoint}/_double/zones/${system.zoneId}/records | jq .   # the same, from the double's admin route`,
    `  redis-cli -p ${sentinelPort} SENTINEL get-master-addr-by-name ${cluster.masterName}`,
    ...(has('dig')
      ? [`  dig +short @127.0.0.1 -p ${system.consul.dnsPort} master.redis.service.consul SRV`]
      : [`  (dig is not installed here; with it: dig +short @127.0.0.1 -p ${system.consul.dnsPort} master.redis.service.consul SRV)`]),
    `  redis-cli -h ${master?.ip ?? '127.0.0.2'} -p ${master?.port ?? 0} SHUTDOWN NOSAVE       # stop the Redis master (or kill its pid)`,
    `  curl -sS -X PUT -d "maintenance -- $(whoami)" $CONSUL_HTTP_ADDR/v1/kv/${KV_PREFIX}/excluded/${exampleNode}   # exclude by hand: out at the next reconcile (5 s)`,
    `  curl -sS -X DELETE $CONSUL_HTTP_ADDR/v1/kv/${KV_PREFIX}/excluded/${exampleNode}                     # and back in`,
    `  npm run -s watcher -- exclude ${exampleNode} --reason 'maintenance'   # the same through the watcher: checks the floor, applies at once`,
    `  npm run -s watcher -- include ${exampleNode}`,
    '',
    `The watcher: Consul runs it as the watch handler on every node's agent; a reconcile runs every ${system.timings.reconcilePeriodMs / 1000} s.`,
    `The check: GET /health/deep every ${system.timings.checkIntervalMs / 1000} s, critical after 2 failures, passing after 2 successes.`,
    '',
  );
  return lines.join('\n');
}

/** Keyboard commands of the live view: k<N> kill a node, s<N> start it, r restart dead Redis, q quit. */
async function runCommand(system: ChaosSystem, line: string, tell: (message: string) => void): Promise<void> {
  const command = line.trim().toLowerCase();
  if (command === '') return;
  if (command === 'q' || command === 'quit') return requestStop('quit');
  const match = /^([ks])\s*(\d)$/.exec(command);
  if (match !== null) {
    const node = system.apiNodes[Number(match[2]) - 1];
    if (node === undefined) return tell(`no node ${match[2]} (1..${system.apiNodes.length})`);
    if (match[1] === 'k') {
      if (!node.server.running) return tell(`${node.name} is not running`);
      const pid = node.server.pid;
      await node.server.kill();
      return tell(`${node.name}: killed pid ${pid} (SIGKILL)`);
    }
    if (node.server.running) return tell(`${node.name} is already running (pid ${node.server.pid})`);
    tell(`${node.name}: starting`);
    await node.server.start();
    return tell(`${node.name}: started, pid ${pidOf(() => node.server.pid)}`);
  }
  if (command === 'r') {
    const dead = system.redis.cluster.redis.filter((r) => !r.running);
    if (dead.length === 0) return tell('every Redis instance is running');
    for (const instance of dead) {
      // As after a crash with no config rewrite: it comes back claiming master, and the Sentinels demote it.
      await instance.start(null);
      tell(`Redis ${instance.key}: started again, pid ${pidOf(() => instance.pid)}`);
    }
    return;
  }
  tell(`unknown command ${JSON.stringify(command)}: k1..k3, s1..s3, r, q`);
}

/** Reads keyboard commands: raw keys under the live view, else lines (a pipe, or a terminal with stdout redirected). */
function readCommands(system: ChaosSystem, view: { prompt: string; messages: string[]; redraw(): void }): () => void {
  const tell = (message: string): void => {
    if (interactive) {
      view.messages.push(`${new Date().toISOString().slice(11, 19)} ${message}`);
      if (view.messages.length > 10) view.messages.splice(0, view.messages.length - 10);
      view.redraw();
    } else stamp(message);
  };
  const execute = (line: string): void => {
    runCommand(system, line, tell).catch((error: unknown) => tell(`${line.trim()} failed: ${errorMessage(error)}`));
  };
  if (interactive) {
    process.stdin.setRawMode(true);
    process.stdin.setEncoding('utf8');
    const onData = (chunk: string): void => {
      for (const key of chunk) {
        if (key === '\u0003') return requestStop('interrupted');
        if (key === '\r' || key === '\n') {
          const line = view.prompt;
          view.prompt = '';
          execute(line);
        } else if (key === '\u007f' || key === '\b') view.prompt = view.prompt.slice(0, -1);
        else if (key >= ' ' && key <= '~' && view.prompt.length < 20) view.prompt += key;
      }
      view.redraw();
    };
    process.stdin.on('data', onData);
    process.stdin.resume();
    return () => {
      process.stdin.off('data', onData);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    };
  }
  const lines = createInterface({ input: process.stdin, terminal: false });
  lines.on('line', execute);
  lines.on('error', () => undefined);
  return () => lines.close();
}

function everyPidGone(): number[] {
  return [...knownPids].filter((pid) => {
    const state = procState(pid);
    return state !== null && state !== 'Z';
  });
}

async function main(): Promise<number> {
  stamp('starting the whole system on loopback (about a minute; Ctrl-C stops it)');
  let system: ChaosSystem;
  let timer: NodeJS.Timeout | undefined;
  try {
    system = await Promise.race([
      startChaosSystem({ log: stamp }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`not started within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    // A start cut off by the bound is still running: leave, and the exit hook kills what it spawned.
    stamp(`the system did not start: ${errorMessage(error)}`);
    return 3;
  } finally {
    clearTimeout(timer);
  }
  const reconcile = startReconcileTimer(system, Date.now() + maxMs + PUBLISHED_TIMEOUT_MS, stamp);
  let exitCode = 0;
  let stopKeys: () => void = () => undefined;
  try {
    if (!stopRequested) {
      stamp(`waiting for the watcher to publish the three nodes under ${RECORD_NAME}`);
      await waitFor(() => stopRequested || system.published().size === system.apiNodes.length, {
        timeoutMs: PUBLISHED_TIMEOUT_MS,
        intervalMs: 250,
        what: `the three nodes in the Route53 double's ${RECORD_NAME}`,
      });
    }
    if (!stopRequested) {
      const { file } = await writeEnvFile(system);
      process.stdout.write(`${describeSystem(system, file)}\n`);
      say(
        `ready in ${Math.round((Date.now() - startedAt) / 1000)} s; ${interactive ? 'live view below' : 'one status line per change follows'}; Ctrl-C stops everything`,
      );
      const reader = new SnapshotReader(system);
      const view = { prompt: '', messages: [] as string[], redraw: () => undefined as void };
      let last: Snapshot | null = null;
      let lastLines = 0;
      let lastStatus = '';
      let lastErrors = '';
      const draw = (): void => {
        if (last === null || stopRequested) return;
        const columns = Math.max(60, process.stdout.columns ?? 120);
        const rows = Math.max(10, process.stdout.rows ?? 40);
        const frame = renderScreen(last, { columns: columns - 1, startedAt, prompt: view.prompt, messages: view.messages })
          .split('\n')
          .slice(-(rows - 1));
        // Back to the first line of the previous frame, clear to the end, draw: the scrollback above keeps the commands.
        const up = lastLines > 1 ? `\u001b[${lastLines - 1}A` : '';
        process.stdout.write(`${up}\r\u001b[J${frame.join('\n')}`);
        lastLines = frame.length;
      };
      if (interactive) {
        view.redraw = draw;
        process.stdout.write('\n');
      }
      stopKeys = readCommands(system, view);
      const until = startedAt + maxMs;
      for (let frame = 0; !stopRequested && frame < 1_000_000; frame++) {
        if (Date.now() >= until) {
          requestStop(`--max-hours reached`);
          break;
        }
        last = await reader.read();
        if (interactive) draw();
        else {
          const status = statusLine(last);
          if (status !== lastStatus) stamp(`status ${status}`);
          lastStatus = status;
          const errors = last.errors.join('; ');
          if (errors !== lastErrors && errors !== '') stamp(`read failed: ${errors}`);
          lastErrors = errors;
        }
        await pause(VIEW_INTERVAL_MS);
      }
      if (interactive) process.stdout.write('\n\n');
    }
  } catch (error) {
    stamp(`the system did not become ready: ${errorMessage(error)}`);
    exitCode = 3;
  } finally {
    stopKeys();
    stamp('stopping everything');
    // The same order as the chaos run; bounded, and a second Ctrl-C leaves at once.
    const stopped = (async () => {
      await reconcile.stop();
      await system.stop();
    })();
    const bound = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref());
    if ((await Promise.race([stopped.then(() => 'done' as const), bound])) === 'timeout')
      stamp(`still stopping after ${STOP_TIMEOUT_MS / 1000} s; leaving (the exit hook kills what is left)`);
    for (const node of system.apiNodes) pidOf(() => node.server.pid);
    for (const instance of system.redis.cluster.redis) pidOf(() => instance.pid);
    const left = everyPidGone();
    stamp(
      left.length === 0
        ? `stopped; nothing left running (${knownPids.size} pids checked)`
        : `still running after the stop: ${left.join(', ')}`,
    );
  }
  return exitCode;
}

process.exitCode = await main();
// Nothing of ours is left to wait for; readline or a stray socket must not keep the process alive.
await sleep(10);
process.exit();
