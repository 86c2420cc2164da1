// The watcher's command line: (argv, streams, environment) → exit code. main.ts only calls run().
import { hostname } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { exitCodeOf, UsageError } from '../common/cli/errors.ts';
import { createProgramLogger, setLogLevel, type OutputFormat } from '../common/cli/logger.ts';
import { printable, printableJson } from '../common/printable.ts';
import { withTimeout } from '../common/with-timeout.ts';
import { loadWatcherConfig, type WatcherConfig } from './config.ts';
import { converge, exclusionImpact, planOnly, type ConvergeDeps, type ExclusionImpact } from './converge.ts';
import { EXIT, EXIT_BY_KIND, EXIT_NAMES, type ExitCode } from './exit-codes.ts';
import { planWithPolicies } from './plan/policy.ts';
import { Route53Provider } from './provider/route53.ts';
import { explainPlan, planText, statusRows, statusText } from './report.ts';
import { ConsulHealthSource, parseHealthService, SourceInputError, toInstances } from './source/consul-health.ts';
import type { Snapshot } from './source/source.ts';
import { ConsulState } from './state/consul-state.ts';
import { WatcherRunRecorder } from './metrics.ts';

export interface Io {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

/** Each command: its synopsis and what it does, for `watcher --help` and `watcher <command> --help`. */
const COMMANDS: Readonly<Record<string, { synopsis: string; text: string }>> = {
  handle: {
    synopsis: 'handle',
    text: 'Consul watch handler: health/service JSON on stdin, CONSUL_INDEX in the environment',
  },
  reconcile: {
    synopsis: 'reconcile [--wait]',
    text: `read health from Consul and converge DNS once (timers, after incidents);
--wait: until Route53 reports the change INSYNC`,
  },
  plan: {
    synopsis: 'plan [--json]',
    text: `show what reconcile would change: each record with its node and why, then the counts;
applies nothing`,
  },
  status: {
    synopsis: 'status [--json]',
    text: `per node: address, Consul health and the output of its failing checks, excluded?, in DNS (or kept
there by the floor)?; and the last run and the last change, with how long ago`,
  },
  exclude: {
    synopsis: 'exclude <node> --reason R',
    text: `keep a node out of DNS (new nodes, maintenance); then reconcile. Refused (exit 77, nothing changed)
when it would leave fewer than minHealthy eligible nodes, unless --force; a node Consul does not know
is excluded with a warning`,
  },
  include: { synopsis: 'include <node>', text: 'let an excluded node back in; then reconcile' },
};

const OPTIONS = `Options:
  --config PATH         configuration file (default: $ST_DNS_CONFIG, else /etc/st-api/dns-watcher.json)
  --by NAME             who excludes (default: $USER)
  --no-apply            exclude/include: only edit the list, do not reconcile now
  --force               exclude: even when DNS would fall below the floor (minHealthy)
  --output json|text    plan/status report and the log lines: JSON or text (default: the report as text; the log
                        as text on a terminal, JSON lines anywhere else: the journal, Consul's handler capture)
  --json                the same as --output json
  -h, --help            this text; after a command, that command's

Environment: CONSUL_HTTP_ADDR (https://… for TLS), CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT,
CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME (as for the consul CLI; each wins over
its key in the configuration: consulAddress, consulCaFile…); the Consul token from the file consulTokenFile names in
the configuration, else CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE; AWS credentials from the usual chain (the
instance role in production); AWS_ENDPOINT_URL_ROUTE_53 to point at another endpoint; ST_DNS_LOG_LEVEL;
ST_DNS_TEXTFILE_DIR (node_exporter textfile metrics).

Exit codes: 0 ok, 64 usage, 65 bad input (stdin or a KV value), 69 Consul/Route53 unreachable,
70 bug, 75 transient (throttled, lock busy or lost, batches rejected: the next run repairs), 77 refused (exclude below
the floor without --force), 78 configuration.
`;

const indent = (text: string, by: string) => text.replaceAll('\n', `\n${by}`);

const USAGE = `Usage: watcher <command> [options]

Publishes the healthy, non-excluded instances of a Consul service as Route53 multivalue records.

Commands:
${Object.values(COMMANDS)
  .map(({ synopsis, text }) => `  ${synopsis.padEnd(28)}${indent(text, ' '.repeat(30))}`)
  .join('\n')}

${OPTIONS}`;

function commandUsage(command: string): string {
  const { synopsis, text } = COMMANDS[command] ?? { synopsis: command, text: '' };
  return `Usage: watcher ${synopsis} [options]\n\n${text}\n\n${OPTIONS}`;
}

/** The agent sends a few KB per instance; anything beyond this is not a health answer. */
const MAX_STDIN_BYTES = 64 * 1024 * 1024;
/** Route53 documents propagation "generally within 60 seconds". */
const WAIT_IN_SYNC_MS = 120_000;
const STDIN_TIMEOUT_MS = 30_000;

export async function run(argv: readonly string[], io: Io): Promise<ExitCode> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    io.stderr.write(`watcher: ${printable(error instanceof Error ? error.message : String(error))}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const { command, values } = parsed;
  // Help and a wrong command line are answered before any configuration is read or any network touched.
  if (values.help === true) {
    io.stdout.write(command !== undefined && Object.hasOwn(COMMANDS, command) ? commandUsage(command) : USAGE);
    return EXIT.OK;
  }
  if (command === undefined) {
    io.stderr.write(USAGE);
    return EXIT.USAGE;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    io.stderr.write(`watcher: unknown command ${printableJson(command.slice(0, 40))}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const output = outputFormat(values);
  if (output instanceof UsageError) {
    io.stderr.write(`watcher: ${output.message}\n\n${commandUsage(command)}`);
    return EXIT.USAGE;
  }

  // Logs on stderr (JSON unless a human watches), node names and KV text in them escaped; stdout is for what the operator asked for (plan, status).
  const logger = createProgramLogger({
    program: 'st-api-watcher',
    command,
    stderr: io.stderr,
    ...(output === undefined ? {} : { format: output }),
  });
  let deps: WatcherDeps | undefined;
  const metrics = new WatcherRunRecorder(io.env);
  let code: ExitCode;
  try {
    setLogLevel(logger, io.env, 'ST_DNS_LOG_LEVEL');
    const config = loadWatcherConfig(parsed.values.config, io.env);
    for (const warning of config.consulWarnings) logger.warn(warning);
    const agent = { address: config.consulAddress, tls: config.consulTls, token: config.consulToken, timeoutMs: config.consulTimeoutMs };
    deps = {
      config,
      source: new ConsulHealthSource(agent, config.service),
      registry: new ConsulState({ ...agent, kvPrefix: config.kvPrefix }),
      provider: new Route53Provider({
        zoneId: config.zoneId,
        recordName: config.recordName,
        ownerId: config.ownerId,
        maxAttempts: config.route53MaxAttempts,
      }),
      logger,
      now: () => new Date(),
      holder: `${hostname()}:${process.pid}`,
      onConverged: (result) => metrics.converged(result, config),
    };
    code = await dispatch(command, parsed.positionals, { ...values, json: output === 'json' }, deps, io);
  } catch (error) {
    code = exitCodeOf(error, EXIT_BY_KIND);
    logger.error({ exit: code, exitName: EXIT_NAMES[code], err: code === EXIT.SOFTWARE ? error : undefined }, describe(error));
    if (deps !== undefined) await recordFailure(deps, command, code, error);
    metrics.failed(error);
  }
  await metrics.write(command, code, logger);
  return code;
}

/** converge's dependencies as the commands get them: exclude, include and --wait use more of the clients than converge does. */
interface WatcherDeps extends ConvergeDeps {
  registry: ConsulState;
  provider: Route53Provider;
}

type Values = {
  config?: string | undefined;
  reason?: string | undefined;
  by?: string | undefined;
  'no-apply'?: boolean | undefined;
  json?: boolean | undefined;
  output?: string | undefined;
  wait?: boolean | undefined;
  force?: boolean | undefined;
  help?: boolean | undefined;
};

async function dispatch(command: string, positionals: string[], values: Values, deps: WatcherDeps, io: Io): Promise<ExitCode> {
  switch (command) {
    case 'handle': {
      // A handler runs with the agent's environment: a token there is also the token of every watch
      // on that agent that sets none (api.NewClient falls back to CONSUL_HTTP_TOKEN).
      const inherited = ['CONSUL_HTTP_TOKEN', 'CONSUL_HTTP_TOKEN_FILE'].filter((name) => (io.env[name] ?? '') !== '');
      if (inherited.length > 0) {
        deps.logger.warn(
          { variables: inherited },
          "the Consul agent's environment holds a Consul token, which every watch on this agent without its own token uses: name the watcher's token in consulTokenFile (dns-watcher.json) and remove these from the agent's environment",
        );
      }
      const index = parseIndex(io.env.CONSUL_INDEX);
      const text = await readStdin(io.stdin);
      const snapshot: Snapshot = { instances: toInstances(parseHealthService(text), deps.config.service), index, source: 'watch' };
      await converge(deps, 'handle', snapshot);
      return EXIT.OK;
    }
    case 'reconcile': {
      const { changeIds } = await converge(deps, 'reconcile');
      if (values.wait !== true) return EXIT.OK;
      // After an incident: confirm Route53 has propagated the change to its name servers.
      for (const changeId of changeIds) {
        if (!(await deps.provider.waitInSync(changeId, WAIT_IN_SYNC_MS))) {
          io.stderr.write(`watcher: change ${changeId} not INSYNC after ${WAIT_IN_SYNC_MS / 1000} s\n`);
          return EXIT.TRANSIENT;
        }
      }
      io.stdout.write(changeIds.length === 0 ? 'no changes\n' : `${changeIds.length} change(s) INSYNC\n`);
      return EXIT.OK;
    }
    case 'plan': {
      const snapshot = await deps.source.read();
      const { plan, current, exclusions } = await planOnly(deps, snapshot);
      const input = { plan, current, instances: snapshot.instances, exclusions, policy: deps.config };
      io.stdout.write(values.json === true ? `${printableJson({ ...plan, changes: explainPlan(input) }, 2)}\n` : planText(input));
      return EXIT.OK;
    }
    case 'status':
      io.stdout.write(await statusReport(deps, values.json === true));
      return EXIT.OK;
    case 'exclude': {
      const node = requireNode(positionals);
      if (values.reason === undefined || values.reason.trim() === '')
        throw new UsageError('exclude needs --reason "why" (on-call engineers read it in the Consul UI)');
      // With --force the impact is only printed: an operator must be able to keep a node out of DNS
      // while Route53 (or Consul's health answer) is unavailable, for when it comes back.
      const impact = await exclusionImpact(deps, node).catch((error: unknown) => {
        if (values.force !== true) throw error;
        io.stderr.write(
          `watcher: warning: cannot work out what excluding ${node} would do to DNS (${printable(error instanceof Error ? error.message : String(error))}); excluding it anyway (--force)\n`,
        );
        return undefined;
      });
      if (impact !== undefined && !impact.known) {
        io.stderr.write(
          `watcher: warning: Consul has no ${deps.config.service} instance on node ${node} (known: ${impact.knownNodes.map(printable).join(', ') || 'none'}); excluding it anyway, in case it registers later\n`,
        );
      }
      if (impact?.breaksFloor === true) {
        if (values.force !== true) {
          io.stderr.write(
            `watcher: refusing to exclude ${node}: ${floorConsequence(impact, deps.config.minHealthy)}\n  Nothing was changed. To exclude it anyway, add --force.\n`,
          );
          return EXIT.REFUSED;
        }
        io.stderr.write(`watcher: excluding ${node} with --force: ${floorConsequence(impact, deps.config.minHealthy)}\n`);
      }
      await deps.registry.exclude({ node, reason: values.reason, by: values.by ?? io.env.USER ?? 'unknown', at: deps.now().toISOString() });
      io.stdout.write(`${node} excluded: ${printable(values.reason)}\n`);
      if (values['no-apply'] !== true) await converge(deps, `exclude ${node}`);
      return EXIT.OK;
    }
    case 'include': {
      const node = requireNode(positionals);
      const wasExcluded = await deps.registry.include(node);
      io.stdout.write(wasExcluded ? `${node} included\n` : `${node} was not excluded\n`);
      if (values['no-apply'] !== true) await converge(deps, `include ${node}`);
      return EXIT.OK;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** What an exclusion below the floor would do, in the plan's own terms. */
function floorConsequence({ before, after }: ExclusionImpact, minHealthy: number): string {
  const list = (nodes: string[]) => nodes.map(printable).join(', ') || 'none';
  return (
    `${after.eligible.length} node(s) would stay eligible (${list(after.eligible)}), fewer than minHealthy ${minHealthy}, so the floor engages: ` +
    `DNS would go from ${before.published.length} node(s) (${list(before.published)}) to ${after.published.length} (${list(after.published)})` +
    `${after.keptByFloor.length > 0 ? `, ${list(after.keptByFloor)} kept only by the floor` : ''}; an excluded node is never kept.`
  );
}

function parseCommandLine(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      reason: { type: 'string' },
      by: { type: 'string' },
      'no-apply': { type: 'boolean' },
      json: { type: 'boolean' },
      output: { type: 'string' },
      wait: { type: 'boolean' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  return { command, positionals: rest, values: values as Values };
}

/** --output json|text or --json; undefined: each stream's default (the report as text, the log by whether stderr is a terminal). */
function outputFormat(values: Values): OutputFormat | undefined | UsageError {
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'text')
    return new UsageError(`--output must be json or text, not ${printableJson(values.output.slice(0, 40))}`);
  if (values.json === true && values.output === 'text') return new UsageError('--json and --output text contradict each other');
  return values.json === true ? 'json' : values.output;
}

function requireNode(positionals: string[]): string {
  const node = positionals[0];
  if (node === undefined || !/^[A-Za-z0-9._-]{1,128}$/.test(node))
    throw new UsageError('name one Consul node, e.g. exclude api-node-7 --reason "new node, not verified"');
  return node;
}

function parseIndex(value: string | undefined): number {
  if (value === undefined || !/^\d{1,20}$/.test(value)) {
    throw new SourceInputError('CONSUL_INDEX is missing or not a number: `handle` is run by a Consul watch; operators use `reconcile`');
  }
  return Number(value);
}

async function readStdin(stdin: Readable): Promise<string> {
  const reading = (async () => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stdin) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += buffer.length;
      if (size > MAX_STDIN_BYTES) throw new SourceInputError(`stdin exceeds ${MAX_STDIN_BYTES} bytes`);
      chunks.push(buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  })();
  return await withTimeout(reading, STDIN_TIMEOUT_MS, (ms) => new SourceInputError(`stdin not closed within ${ms} ms`));
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}

/** Best effort: the status key says the last run failed and why, so the Consul UI tells the truth. */
async function recordFailure(deps: ConvergeDeps, command: string, code: ExitCode, error: unknown): Promise<void> {
  if (command === 'plan' || command === 'status') return;
  try {
    const previous = await deps.registry.readStatus().catch(() => undefined);
    await deps.registry.writeStatus({
      lastRun: deps.now().toISOString(),
      command,
      result: `failed (exit ${code} ${EXIT_NAMES[code]})`,
      message: `${describe(error)} — DNS unchanged by this run`,
      consulIndex: previous?.consulIndex ?? null,
      appliedIndex: previous?.appliedIndex ?? null,
      lastChange: previous?.lastChange ?? null,
      belowFloor: previous?.belowFloor ?? false,
      floorEngaged: previous?.floorEngaged ?? false,
      published: previous?.published ?? [],
      eligible: previous?.eligible ?? [],
      excluded: previous?.excluded ?? [],
      handWrittenExclusions: previous?.handWrittenExclusions ?? [],
      keptByFloor: previous?.keptByFloor ?? [],
      skipped: previous?.skipped ?? [],
      changes: { create: 0, upsert: 0, delete: 0, deferredDeletes: 0 },
      route53Calls: 0,
    });
  } catch {
    // Consul itself is the problem; the log line above is all there is.
  }
}

async function statusReport(deps: ConvergeDeps, json: boolean): Promise<string> {
  const [snapshot, exclusions, current, last] = await Promise.all([
    deps.source.read(),
    deps.registry.exclusions(),
    deps.provider.listOwned(),
    deps.registry.readStatus(),
  ]);
  // What the next run would do (nothing is applied here): which nodes the floor keeps, which are left out.
  const plan = planWithPolicies({
    current,
    instances: snapshot.instances,
    excluded: new Set(exclusions.map((exclusion) => exclusion.node)),
    policy: deps.config,
  });
  const input = { plan, current, instances: snapshot.instances, exclusions, policy: deps.config };
  if (json) {
    return `${printableJson({ nodes: statusRows(input), skipped: plan.skipped, floorEngaged: plan.floorEngaged, belowFloor: plan.belowFloor, lastRun: last ?? null }, 2)}\n`;
  }
  return statusText({ ...input, last, now: deps.now() });
}

export type { Logger, WatcherConfig };
