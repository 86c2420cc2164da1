// Shared plumbing for the throwaway servers tests launch: ports, bounded
// waiting, spawning with a pid registry, and a lifecycle (stop/kill/pause/
// resume/restart) that fault tests drive.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOOPBACK = '127.0.0.1';

// The shared servers on this machine; a port handed out must never be theirs.
const FORBIDDEN_PORTS = new Set([3306, 6379, 26379]);

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Returns once the current fixed window (a per-minute budget, say) has at least `neededMs` left,
 * sleeping into the next window if needed, so a test's requests all land in one window whatever
 * the wall clock says. Bounded by one window.
 */
export async function waitForWindowWithRoom(windowMs: number, neededMs: number): Promise<void> {
  if (neededMs >= windowMs) throw new Error(`a ${windowMs} ms window never has ${neededMs} ms left`);
  const left = windowMs - (Date.now() % windowMs);
  if (left < neededMs) await sleep(left + 10);
}

/**
 * A port the kernel just handed out on 127.0.0.1. It is released before
 * return, so another process may grab it first: launchers retry on EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ host: LOOPBACK, port: 0, exclusive: true }, () => {
        const address = server.address();
        const found = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(found));
      });
    });
    if (port > 0 && !FORBIDDEN_PORTS.has(port)) return port;
  }
  throw new Error('freePort: no usable port after 10 attempts');
}

/** Thrown by a waitFor probe to stop waiting at once (e.g. the server died). */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

export interface WaitForOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Says what was awaited in the timeout error. */
  readonly what: string;
}

/**
 * Polls `probe` until it returns a truthy value, which is returned. A probe
 * that throws or returns a falsy value is retried; one that hangs is cut off
 * at the deadline, so the whole wait is bounded by `timeoutMs`.
 */
export async function waitFor<T>(
  probe: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  options: WaitForOptions,
): Promise<T> {
  const intervalMs = Math.max(1, options.intervalMs ?? 50);
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  while (true) {
    attempts++;
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(probe),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`probe still pending after ${remaining} ms`)), Math.max(1, remaining));
        }),
      ]);
      if (value) return value;
      lastError = undefined;
    } catch (error) {
      if (error instanceof GiveUp) throw new Error(`gave up waiting for ${options.what}: ${error.message}`, { cause: error });
      lastError = error;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + intervalMs > deadline) {
      const last = lastError === undefined ? '' : `; last error: ${errorMessage(lastError)}`;
      throw new Error(`timed out after ${Date.now() - started} ms (${attempts} attempts) waiting for ${options.what}${last}`, {
        cause: lastError,
      });
    }
    await sleep(intervalMs);
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    // mysql2/ioredis put the useful part in `code`, and AggregateError in `errors`.
    const code = (error as { code?: unknown }).code;
    const message = error.message || (error instanceof AggregateError ? error.errors.map(errorMessage).join(', ') : '');
    return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message || error.name;
  }
  return String(error);
}

// ---------------------------------------------------------------------------
// Temp dirs and in-process cleanup

// Live children and their pid-registry files.
const liveChildren = new Map<ChildProcess, string | null>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

// A test file that forgets to stop a server (or fails before it can) must
// not leave it running: children are unref'd so they never keep the test
// process alive, and killed here when it exits.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, registryFile] of liveChildren) {
      if (child.pid !== undefined) forceKill(child.pid);
      unregisterPid(registryFile);
    }
    // ST_TEST_KEEP_DIRS=1 keeps logs and data for a post-mortem (the runner's sweep still applies under npm test).
    if (process.env['ST_TEST_KEEP_DIRS'] !== '1') for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** The parent for temp dirs: the runner's run dir when set, so it can sweep them. */
export function testRoot(): string {
  return process.env['ST_TEST_RUN_DIR'] ?? tmpdir();
}

/** A fresh dir, removed when this process exits. Kept short: unix socket paths are capped at 107 bytes. */
export async function makeTempDir(prefix: string): Promise<string> {
  installExitHook();
  const dir = await mkdtemp(join(testRoot(), `${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

// ---------------------------------------------------------------------------
// Pid registry: one file per live server in $ST_TEST_RUN_DIR/pids, so the
// runner can kill what a crashed or timed-out test file left behind.

interface PidRecord {
  readonly pid: number;
  readonly name: string;
  readonly command: string;
  /** /proc start time, so a recycled pid is never mistaken for ours. */
  readonly startTime: string | null;
}

function pidDir(runDir: string): string {
  return join(runDir, 'pids');
}

function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; start time is field 22 overall.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** The process state letter from /proc (R, S, T = stopped, Z, …), or null if gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/** Records a live server; returns the file to delete when it exits, if any. */
/** Records a live server's pid for the runner's sweep; returns the record's file, or null outside `test/run.ts`. */
export function registerPid(pid: number, name: string, command: string): string | null {
  const runDir = process.env['ST_TEST_RUN_DIR'];
  if (runDir === undefined || runDir === '') return null;
  const record: PidRecord = { pid, name, command, startTime: procStartTime(pid) };
  mkdirSync(pidDir(runDir), { recursive: true });
  const file = join(pidDir(runDir), `${pid}.json`);
  writeFileSync(file, JSON.stringify(record));
  return file;
}

export function unregisterPid(file: string | null): void {
  if (file === null) return;
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function forceKill(pid: number): void {
  try {
    // A SIGSTOPped process still dies of SIGKILL; SIGCONT first anyway so
    // it is never left stopped if SIGKILL is somehow refused.
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Kills every server recorded in `runDir` that is still alive and still the
 * process we started. Returns the records of those killed.
 */
export async function killRecordedPids(runDir: string): Promise<{ pid: number; name: string }[]> {
  let files: string[];
  try {
    files = readdirSync(pidDir(runDir)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const killed: { pid: number; name: string }[] = [];
  for (const file of files) {
    let record: PidRecord;
    try {
      record = JSON.parse(readFileSync(join(pidDir(runDir), file), 'utf8')) as PidRecord;
    } catch {
      continue;
    }
    const startTime = procStartTime(record.pid);
    if (startTime === null || (record.startTime !== null && startTime !== record.startTime)) continue;
    forceKill(record.pid);
    killed.push({ pid: record.pid, name: record.name });
  }
  // Not our children, so no exit event: poll /proc until they are gone (or zombies of a dead parent).
  if (killed.length > 0) {
    await waitFor(
      () =>
        killed.every(({ pid }) => {
          const s = procState(pid);
          return s === null || s === 'Z';
        }),
      {
        timeoutMs: 10_000,
        what: `leftover servers ${killed.map((k) => k.pid).join(', ')} to die`,
      },
    ).catch(() => undefined);
  }
  return killed;
}

// ---------------------------------------------------------------------------
// Spawning

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** For messages and the pid registry. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Receives the server's stdout and stderr (appended). */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface SpawnedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  /** Null while running. */
  exitInfo(): ExitInfo | null;
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<ExitInfo>;
}

/** Starts a server in the foreground (no daemonizing: we need its real pid) and records its pid. */
export async function spawnServer(options: SpawnOptions): Promise<SpawnedProcess> {
  installExitHook();
  const logFd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  let exitInfo: ExitInfo | null = null;
  let registryFile: string | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      liveChildren.delete(child);
      unregisterPid(registryFile);
      resolve(exitInfo);
    });
  });
  try {
    await spawned;
  } catch (error) {
    throw new Error(`cannot spawn ${options.name} (${options.command}): ${errorMessage(error)}`, { cause: error });
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`spawned ${options.name} has no pid`);
  child.unref();
  registryFile = registerPid(pid, options.name, options.command);
  // It may already have died (bad arguments) before we got here.
  if (exitInfo === null) liveChildren.set(child, registryFile);
  else unregisterPid(registryFile);

  return {
    name: options.name,
    pid,
    exited,
    exitInfo: () => exitInfo,
    signal(signal) {
      if (exitInfo === null) process.kill(pid, signal);
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          exited,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${options.name} (pid ${pid}) did not exit within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The end of a log file, for error messages. */
export function logTail(file: string, bytes = 2000): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(bytes, size));
      readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------
// Lifecycle

export interface ManagedServerSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly cwd?: string;
  /** Polled until truthy or `readyTimeoutMs`; a throw counts as "not yet". */
  readonly isReady: () => Promise<boolean>;
  readonly readyTimeoutMs?: number;
  /** How long a graceful stop may take before SIGKILL. */
  readonly stopTimeoutMs?: number;
  /** Runs before every (re)start, e.g. to clear what a SIGKILL left behind. */
  readonly beforeStart?: () => void | Promise<void>;
}

export class ServerStartError extends Error {
  override name = 'ServerStartError';
  readonly log: string;
  readonly exit: ExitInfo | null;
  constructor(message: string, log: string, exit: ExitInfo | null, cause: unknown) {
    super(`${message}\n--- log tail ---\n${log}`, { cause });
    this.log = log;
    this.exit = exit;
  }
}

const KILL_WAIT_MS = 10_000;

/** One server process at a time, restartable with the same arguments (so the same port and data). */
export class ManagedServer {
  readonly #spec: ManagedServerSpec;
  #process: SpawnedProcess | null = null;

  constructor(spec: ManagedServerSpec) {
    this.#spec = spec;
  }

  get name(): string {
    return this.#spec.name;
  }

  get logFile(): string {
    return this.#spec.logFile;
  }

  /** The current process's pid; changes on restart. */
  get pid(): number {
    if (this.#process === null) throw new Error(`${this.#spec.name} was never started`);
    return this.#process.pid;
  }

  get running(): boolean {
    return this.#process !== null && this.#process.exitInfo() === null;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.#spec.name} is already running (pid ${this.pid})`);
    await this.#spec.beforeStart?.();
    const proc = await spawnServer({
      name: this.#spec.name,
      command: this.#spec.command,
      args: this.#spec.args,
      logFile: this.#spec.logFile,
      ...(this.#spec.cwd === undefined ? {} : { cwd: this.#spec.cwd }),
    });
    this.#process = proc;
    try {
      await waitFor(
        async () => {
          const exit = proc.exitInfo();
          if (exit !== null) throw new GiveUp(`it exited (code ${exit.code}, signal ${exit.signal})`);
          return await this.#spec.isReady();
        },
        { timeoutMs: this.#spec.readyTimeoutMs ?? 30_000, intervalMs: 50, what: `${this.#spec.name} (pid ${proc.pid}) to be ready` },
      );
    } catch (error) {
      // Never leave a half-started server behind a failed start.
      if (proc.exitInfo() === null) {
        forceKill(proc.pid);
        await proc.waitForExit(KILL_WAIT_MS).catch(() => undefined);
      }
      throw new ServerStartError(errorMessage(error), logTail(this.#spec.logFile), proc.exitInfo(), error);
    }
  }

  /** Graceful SIGTERM, escalating to SIGKILL after `stopTimeoutMs`. No-op when not running. */
  async stop(): Promise<void> {
    const proc = this.#process;
    if (proc === null || proc.exitInfo() !== null) return;
    // A paused process would sit on SIGTERM forever.
    proc.signal('SIGCONT');
    proc.signal('SIGTERM');
    try {
      await proc.waitForExit(this.#spec.stopTimeoutMs ?? 15_000);
    } catch {
      proc.signal('SIGKILL');
      await proc.waitForExit(KILL_WAIT_MS);
    }
  }

  /** SIGKILL, as in a crash; resolves once the process is gone. No-op when not running. */
  async kill(): Promise<void> {
    const proc = this.#process;
    if (proc === null || proc.exitInfo() !== null) return;
    proc.signal('SIGKILL');
    await proc.waitForExit(KILL_WAIT_MS);
  }

  /** SIGSTOP: the port stays open but nothing answers. Resolves once the kernel reports it stopped. */
  async pause(): Promise<void> {
    const proc = this.#requireRunning('pause');
    proc.signal('SIGSTOP');
    await waitFor(() => procState(proc.pid) === 'T', { timeoutMs: 5_000, intervalMs: 5, what: `${this.#spec.name} to stop` });
  }

  async resume(): Promise<void> {
    const proc = this.#requireRunning('resume');
    proc.signal('SIGCONT');
    await waitFor(() => procState(proc.pid) !== 'T', { timeoutMs: 5_000, intervalMs: 5, what: `${this.#spec.name} to continue` });
  }

  /** Stops gracefully if running, then starts with the same arguments. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  #requireRunning(action: string): SpawnedProcess {
    const proc = this.#process;
    if (proc === null || proc.exitInfo() !== null) throw new Error(`cannot ${action} ${this.#spec.name}: not running`);
    return proc;
  }
}

/**
 * Starts the server `create` builds for a free port in a fresh temp dir (`<prefix>-*`), retrying on
 * a port clash as startOnFreePort does; a failed start removes that attempt's dir.
 */
export async function startInTempDirOnFreePort<T extends { start(): Promise<void> }>(
  what: string,
  prefix: string,
  create: (port: number, dir: string) => T | Promise<T>,
  isPortClash: (error: ServerStartError) => boolean,
): Promise<T> {
  return startOnFreePort(
    what,
    async (port) => {
      const dir = await makeTempDir(prefix);
      const server = await create(port, dir);
      try {
        await server.start();
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      return server;
    },
    isPortClash,
  );
}

/** Starts servers on fresh ports, retrying when another process took the port in between. */
export async function startOnFreePort<T>(
  what: string,
  attempt: (port: number) => Promise<T>,
  isPortClash: (error: ServerStartError) => boolean,
): Promise<T> {
  const maxAttempts = 3;
  for (let i = 1; ; i++) {
    const port = await freePort();
    try {
      return await attempt(port);
    } catch (error) {
      if (i >= maxAttempts || !(error instanceof ServerStartError) || !isPortClash(error)) throw error;
      process.stderr.write(`${what}: port ${port} was taken, retrying (${i}/${maxAttempts})\n`);
    }
  }
}

/** True when nothing listens on 127.0.0.1:`port` any more (ECONNREFUSED); false while it accepts. */
export function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, LOOPBACK);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
