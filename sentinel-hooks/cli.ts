// The hooks' command line: (argv, streams, environment) → exit code. main.ts only calls run().
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { errorOfKind, exitCodeOf, ProgramError, UsageError } from '../common/cli/errors.ts';
import { createProgramLogger, setLogLevel, type OutputFormat } from '../common/cli/logger.ts';
import { ConsulClient, KINDS_BY_STATUS } from '../common/consul/client.ts';
import { printableJson } from '../common/printable.ts';
import { withTimeout } from '../common/with-timeout.ts';
import { ArgumentError, endpointKey, eventMasterName, parseClientReconfigArgs, parseNotificationArgs } from './args.ts';
import { HooksConfigError, loadHooksConfig, type HooksConfig } from './config.ts';
import { recordEvent } from './events.ts';
import { EXIT, EXIT_BY_KIND, EXIT_NAMES, type ExitCode } from './exit-codes.ts';
import { acquireLock, LockBusyError } from './lock.ts';
import { HooksRunRecorder } from './metrics.ts';
import { applyTruth, DeadlineError, readTruth, sleep, type SyncContext, type Truth } from './sync.ts';

export interface Io {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

/** Each command: its arguments and what it does, for `--help` and `<command> --help`. */
const COMMANDS: Readonly<Record<string, { synopsis: string; text: string }>> = {
  'client-reconfig': {
    synopsis: 'client-reconfig <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>',
    text: `Sentinel's client-reconfig-script: re-checks ROLE and the Sentinels, then
re-registers this host's instance(s)`,
  },
  notification: {
    synopsis: 'notification <event-type> <event-description>',
    text: `Sentinel's notification-script: logs the event and keeps the last ones in
Consul KV <kvPrefix>/events/<master-name>`,
  },
  reconcile: { synopsis: 'reconcile', text: 'the same re-registration as client-reconfig, for a timer (every few seconds)' },
};

const OPTIONS = `Options (before the command):
  --config PATH       configuration file (default: $ST_SENTINEL_HOOKS_CONFIG, else /etc/st-api/sentinel-hooks.json)
  --output json|text  log lines as JSON or text (default: text on a terminal, JSON lines anywhere else: Sentinel's log)
  -h, --help          this text; after a command, that command's

Environment: CONSUL_HTTP_ADDR (default 127.0.0.1:8500; https://… for TLS), CONSUL_HTTP_TOKEN, ST_SENTINEL_HOOKS_LOG_LEVEL,
ST_SENTINEL_HOOKS_TEXTFILE_DIR (node_exporter textfile metrics),
and as for the consul CLI CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT,
CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME (each wins over its key in the file: consulAddress, consulCaFile…).

Exit codes (Sentinel's meaning): 0 done, 1 transient (Consul, Sentinels or the lock unavailable:
run again), 2 permanent (bad arguments or configuration; Sentinel will not retry).
`;

const USAGE = `Usage: sentinel-hooks [options] <command> [arguments]

Keeps the Consul service "redis" (tags master|replica) in line with Redis Sentinel.

Commands:
${Object.values(COMMANDS)
  .map(({ synopsis, text }) => `  ${synopsis}\n${text.replace(/^/gm, '                 ')}`)
  .join('\n')}

${OPTIONS}`;

function commandUsage(command: string): string {
  const { synopsis, text } = COMMANDS[command] ?? { synopsis: command, text: '' };
  return `Usage: sentinel-hooks [options] ${synopsis}\n\n${text}\n\n${OPTIONS}`;
}

/** How long past the deadline (the abort) a run may take to stop on its own before it is cut off. */
const DEADLINE_GRACE_MS = 500;

class NoMajorityError extends errorOfKind('NoMajorityError', 'transient') {}

/** This instance may be promoted once the one still tagged master leaves DNS: a later run does it. */
class PromotionDeferredError extends errorOfKind('PromotionDeferredError', 'transient') {}

export async function run(argv: readonly string[], io: Io): Promise<ExitCode> {
  let parsed: ReturnType<typeof splitCommandLine>;
  try {
    parsed = splitCommandLine(argv);
  } catch (error) {
    io.stderr.write(`sentinel-hooks: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return EXIT.PERMANENT;
  }
  const { command, positionals, values } = parsed;
  // Help and a wrong command line are answered before any configuration is read or any network touched.
  // `<command> --help`: no Sentinel argument is spelt so (event types are words such as +sdown).
  const commandHelp = command !== undefined && positionals.length === 1 && (positionals[0] === '--help' || positionals[0] === '-h');
  if (values.help === true || commandHelp) {
    io.stdout.write(command !== undefined && Object.hasOwn(COMMANDS, command) ? commandUsage(command) : USAGE);
    return EXIT.OK;
  }
  if (command === undefined) {
    io.stderr.write(USAGE);
    return EXIT.PERMANENT;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    // Permanent: Sentinel would run a misspelt script path again and again to the same end.
    io.stderr.write(`sentinel-hooks: unknown command ${printableJson(command.slice(0, 40))}\n\n${USAGE}`);
    return EXIT.PERMANENT;
  }

  // JSON lines on stderr where Sentinel runs it (its log, the journal); text when a human runs it on a terminal.
  const logger = createProgramLogger({
    program: 'st-api-sentinel-hooks',
    command,
    stderr: io.stderr,
    ...(values.output === undefined ? {} : { format: values.output }),
  });
  let config: HooksConfig | undefined;
  const abort = new AbortController();
  let deadlineTimer: NodeJS.Timeout | undefined;
  const metrics = new HooksRunRecorder(io.env);
  let code: ExitCode;
  try {
    setLogLevel(logger, io.env, 'ST_SENTINEL_HOOKS_LOG_LEVEL');
    config = loadHooksConfig(values.config, io.env);
    for (const warning of config.consulWarnings) logger.warn(warning);
    for (const warning of config.warnings) logger.warn({ file: warning.file, mode: warning.mode }, warning.message);
    const deadlineMs = config.deadlineMs;
    deadlineTimer = setTimeout(() => abort.abort(), deadlineMs);
    // Every wait inside honours the signal; the bound is the backstop for one that does not.
    code = await withTimeout(
      dispatch(command, positionals, config, logger, abort.signal, metrics),
      deadlineMs + DEADLINE_GRACE_MS,
      () => new DeadlineError(`not finished within ${deadlineMs} ms`),
    );
  } catch (error) {
    code = exitCodeOf(error, EXIT_BY_KIND);
    const message =
      error instanceof DeadlineError || (abort.signal.aborted && !(error instanceof ArgumentError))
        ? `deadline of ${config?.deadlineMs ?? '?'} ms reached: ${describe(error)}`
        : describe(error);
    logger.error({ exit: code, exitName: EXIT_NAMES[code], err: error instanceof ProgramError ? undefined : error }, message);
    metrics.failed(error);
  } finally {
    clearTimeout(deadlineTimer);
    abort.abort();
  }
  await metrics.write(command, code, logger);
  return code;
}

/**
 * Options go before the command; everything after it is Sentinel's, passed through untouched
 * (event types such as "-sdown" look like options to a generic parser).
 */
function splitCommandLine(argv: readonly string[]): {
  command: string | undefined;
  positionals: string[];
  values: { config?: string; help?: boolean; output?: OutputFormat };
} {
  const values: { config?: string; help?: boolean; output?: OutputFormat } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') values.help = true;
    else if (arg === '--config' || arg.startsWith('--config=')) {
      const value = arg === '--config' ? argv[++i] : arg.slice('--config='.length);
      if (value === undefined || value === '') throw new UsageError('--config needs a path');
      values.config = value;
    } else if (arg === '--output' || arg.startsWith('--output=')) {
      const value = arg === '--output' ? argv[++i] : arg.slice('--output='.length);
      if (value !== 'json' && value !== 'text')
        throw new UsageError(`--output must be json or text, not ${printableJson((value ?? '').slice(0, 40))}`);
      values.output = value;
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${printableJson(arg.slice(0, 40))}`);
    else return { command: arg, positionals: argv.slice(i + 1), values };
  }
  return { command: undefined, positionals: [], values };
}

async function dispatch(
  command: string,
  positionals: string[],
  config: HooksConfig,
  logger: Logger,
  signal: AbortSignal,
  metrics: HooksRunRecorder,
): Promise<ExitCode> {
  switch (command) {
    case 'client-reconfig':
      return await clientReconfig(
        positionals,
        config,
        logger.child({ argv: positionals.slice(0, 7).map((a) => a.slice(0, 80)) }),
        signal,
        metrics,
      );
    case 'reconcile':
      if (positionals.length > 0) throw new UsageError('reconcile takes no arguments');
      return await reconcile(config, logger, signal, metrics);
    case 'notification':
      return await notification(positionals, config, logger, signal, metrics);
    default:
      throw new UsageError(`unknown command ${printableJson(command.slice(0, 40))}`);
  }
}

/** The local agent, every call bounded by the run's deadline; its answers read as Sentinel's exit codes want (KINDS_BY_STATUS). */
function consulClient(config: HooksConfig, signal: AbortSignal): ConsulClient {
  return new ConsulClient({
    address: config.consulAddress,
    tls: config.consulTls,
    token: config.consulToken,
    timeoutMs: config.consulTimeoutMs,
    signal,
    failureKinds: KINDS_BY_STATUS,
  });
}

function context(config: HooksConfig, logger: Logger, signal: AbortSignal, by: string): SyncContext {
  return {
    config,
    consul: consulClient(config, signal),
    logger,
    signal,
    by: `${by}@${config.reporter}`,
    now: () => new Date(),
  };
}

async function withLock<T>(ctx: SyncContext, body: () => Promise<T>): Promise<T> {
  const release = await acquireLock(ctx.config.lockFile, ctx.config.lockWaitMs, ctx.signal).catch((error: unknown) => {
    if (error instanceof LockBusyError) throw error;
    throw new HooksConfigError(
      `cannot create lock file ${ctx.config.lockFile} (${(error as NodeJS.ErrnoException).code ?? String(error)}): set lockFile to a path writable by Sentinel and the reconcile timer`,
    );
  });
  try {
    return await body();
  } finally {
    await release();
  }
}

function summarize(truth: Truth): Record<string, unknown> {
  return {
    sentinels: Object.fromEntries(
      truth.answers.map((a) => [
        a.sentinel,
        a.master === undefined ? `no answer (${a.error ?? 'unknown'})` : (a.master ?? 'unknown master'),
      ]),
    ),
    majority: truth.view.master,
    roles: Object.fromEntries(
      [...truth.roles].map(([k, r]) => [
        k,
        r.kind === 'replica'
          ? `slave of ${r.master}`
          : r.kind === 'unreachable'
            ? `unreachable: ${r.error}`
            : r.kind === 'other'
              ? r.role
              : 'master',
      ]),
    ),
  };
}

async function clientReconfig(
  argv: string[],
  config: HooksConfig,
  logger: Logger,
  signal: AbortSignal,
  metrics: HooksRunRecorder,
): Promise<ExitCode> {
  const args = parseClientReconfigArgs(argv);
  if (args.masterName !== config.masterName) {
    throw new ArgumentError(`master ${args.masterName} is not the one configured in ${config.file} (${config.masterName})`);
  }
  const ctx = context(config, logger, signal, 'client-reconfig');
  const to = endpointKey(args.to);
  const from = endpointKey(args.from);
  return await withLock(ctx, async () => {
    // Sentinels agree within ~70 ms of the first hook; a retry (30 s+ later) agrees at once.
    const until = Date.now() + config.convergeWaitMs;
    let truth = await readTruth(ctx, [args.to]);
    for (let attempt = 0; attempt < 600; attempt++) {
      const settled = truth.view.master !== null && (truth.view.master !== to || truth.roles.get(to)?.kind === 'master');
      if (settled || Date.now() >= until) break;
      await sleep(50, signal);
      truth = await readTruth(ctx, [args.to]);
    }
    const stale = truth.view.master !== to;
    logger.info(
      { ...summarize(truth), role: args.role, state: args.state, failover: `${from} → ${to}`, stale },
      stale ? 'arguments do not match the Sentinels now (stale retry or later failover): applying the current truth' : 'failover confirmed',
    );
    const result = await applyTruth(ctx, truth, stale ? undefined : `${from} → ${to}`, config.promotionWaitMs);
    metrics.applied(truth, result);
    return finish(truth, result.blocked, result.misconfigured);
  });
}

async function reconcile(config: HooksConfig, logger: Logger, signal: AbortSignal, metrics: HooksRunRecorder): Promise<ExitCode> {
  const ctx = context(config, logger, signal, 'reconcile');
  return await withLock(ctx, async () => {
    const truth = await readTruth(ctx);
    logger.debug(summarize(truth), 'truth');
    const result = await applyTruth(ctx, truth, undefined, 0);
    metrics.applied(truth, result);
    return finish(truth, result.blocked, result.misconfigured);
  });
}

function finish(truth: Truth, blocked: boolean, misconfigured: boolean): ExitCode {
  if (misconfigured) throw new HooksConfigError('a configured instance is not a Redis data instance (see the check output)');
  // What could be applied safely was; the rest needs another run once the Sentinels (or the old master's host) answer.
  if (truth.view.master === null)
    throw new NoMajorityError(`no Sentinel majority on the master (${truth.view.agreement}): nothing promoted`);
  if (blocked) throw new PromotionDeferredError('another instance still holds the master tag: promotion deferred');
  return EXIT.OK;
}

async function notification(
  argv: string[],
  config: HooksConfig,
  logger: Logger,
  signal: AbortSignal,
  metrics: HooksRunRecorder,
): Promise<ExitCode> {
  const args = parseNotificationArgs(argv);
  metrics.event(args.eventType);
  const master = eventMasterName(args.description);
  logger.warn(
    { event: args.eventType, description: args.description, master: master ?? config.masterName, reporter: config.reporter },
    `sentinel event ${args.eventType} ${args.description}`,
  );
  const consul = consulClient(config, signal);
  const key = `${config.kvPrefix}/events/${config.masterName}`;
  try {
    const ring = await recordEvent(
      consul,
      key,
      config.masterName,
      { time: new Date(), type: args.eventType, description: args.description, reporter: config.reporter },
      config.eventsKept,
    );
    logger.debug({ key, count: ring.count }, 'event recorded');
  } catch (error) {
    // Never fail Sentinel over bookkeeping: a retry would queue behind real hooks, and the log line above has it.
    logger.error({ key, err: error instanceof ProgramError ? undefined : error }, `event not recorded in Consul KV: ${describe(error)}`);
  }
  return EXIT.OK;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 1000);
  return String(error).slice(0, 1000);
}
