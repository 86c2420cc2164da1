// The servers under test run in their own processes, so the load generator never shares their
// event loop. Every process started here is tracked by pid and stopped on the way out, including
// when the bench fails or is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

export interface NodeServer {
  readonly name: string;
  readonly pid: number;
  readonly baseUrl: string;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process has exited. */
  stop(timeoutMs?: number): Promise<void>;
  /** The end of its output, for error messages. */
  outputTail(): string;
}

const live = new Set<ChildProcess>();

/** Kills (SIGKILL) every child still running; for exit paths that cannot wait. */
export function killAllChildrenNow(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface StartOptions {
  name: string;
  /** Script path relative to the repository root, run with `node --import tsx`. */
  script: string;
  env: NodeJS.ProcessEnv;
  /** A directory to write a V8 CPU profile into (node --cpu-prof) when the process exits. */
  cpuProfileDir?: string;
  /** The `msg` of the JSON line that carries `port` once the server listens. */
  listeningMessage: string;
  startTimeoutMs?: number;
}

export async function startNodeServer(options: StartOptions): Promise<NodeServer> {
  const args = [
    ...(options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`]),
    '--import',
    'tsx',
    options.script,
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const exited = once(child, 'exit').then(() => live.delete(child));
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stderr.on('data', keep);

  const stop = async (timeoutMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`${options.name} did not listen within ${options.startTimeoutMs ?? 30_000} ms`)),
      options.startTimeoutMs ?? 30_000,
    );
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited before listening (code ${code}, signal ${signal})`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      keep(chunk);
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        try {
          const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
          if (parsed.msg === options.listeningMessage && typeof parsed.port === 'number') {
            clearTimeout(timer);
            resolve(parsed.port);
          }
        } catch {
          // not a JSON log line
        }
      }
    });
  }).catch(async (error: unknown) => {
    await stop(2000);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- ${options.name} output ---\n${tail}`, { cause: error });
  });
  // After start-up its output only matters for error messages; keep draining it so the pipe never blocks the child.
  child.stdout.removeAllListeners('data');
  child.stdout.on('data', keep);

  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.name} has no pid`);
  return { name: options.name, pid, baseUrl: `http://127.0.0.1:${port}`, stop, outputTail: () => tail };
}

export function stApiServer(configFile: string, cpuProfileDir?: string): Promise<NodeServer> {
  return startNodeServer({
    name: 'st-api',
    script: join('api', 'main.ts'),
    env: { ...process.env, NODE_ENV: 'production', ST_API_CONFIG: configFile },
    listeningMessage: 'st-api listening',
    ...(cpuProfileDir === undefined ? {} : { cpuProfileDir }),
  });
}
