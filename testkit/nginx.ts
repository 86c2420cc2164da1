// Throwaway nginx for tests: the real /usr/sbin/nginx on a free 127.0.0.1 port,
// with a test-written http{} body, its own prefix dir, logs and temp paths, so
// edge configs from deploy/edge/ run exactly as nginx would run them.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  LOOPBACK,
  ManagedServer,
  ServerStartError,
  logTail,
  makeTempDir,
  registerPid,
  startOnFreePort,
  unregisterPid,
} from './processes.ts';

const execFileAsync = promisify(execFile);

export const NGINX_BINARY = '/usr/sbin/nginx';

export interface NginxBuildContext {
  /** The port the server blocks must listen on, as `listen 127.0.0.1:<port>;`. */
  readonly port: number;
  /** nginx's prefix dir: holds nginx.conf, the logs and temp paths; free for the test's own files. */
  readonly dir: string;
}

export interface StartNginxOptions {
  /** Default 20 s; a cold nginx answers in milliseconds, the slack is for a busy machine. */
  readonly readyTimeoutMs?: number;
  /** Lines appended to the main (top-level) context, e.g. `env FOO;` or `load_module …;`. */
  readonly mainContext?: string;
}

/** One line of the access log (the `st_json` format below). */
export interface NginxAccessEntry {
  readonly status: number;
  readonly method: string;
  /** As the client sent it, with the query string (so signed-URL tokens are visible). */
  readonly uri: string;
  /** After rewrites: the path nginx actually served. */
  readonly servedUri: string;
  readonly host: string;
  readonly bytes: number;
  readonly origin: string;
  readonly cookie: string;
}

export interface NginxServer {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  readonly dir: string;
  /** http://127.0.0.1:<port> */
  readonly baseUrl: string;
  /** The master's pid. */
  readonly pid: number;
  readonly configFile: string;
  readonly errorLogFile: string;
  readonly accessLogFile: string;
  /** The end of error.log (info level), for assertion messages. */
  errorLog(bytes?: number): string;
  /** Every request served since startNginx() resolved (its readiness probes left out), oldest first. */
  accessLog(): NginxAccessEntry[];
  /** Graceful stop; also kills workers a crashed master left behind. No-op when stopped. */
  stop(): Promise<void>;
}

// JSON lines so tests can parse what the edge saw without a regex per field.
const ACCESS_LOG_FORMAT =
  `log_format st_json escape=json '{"status":$status,"method":"$request_method","uri":"$request_uri",` +
  `"servedUri":"$uri","host":"$http_host","bytes":$body_bytes_sent,"origin":"$http_origin","cookie":"$http_cookie"}';`;

function nginxConf(dir: string, body: string, mainContext: string): string {
  const temp = (name: string): string => join(dir, 'temp', name);
  return [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // Test dirs live under a mkdtemp (0700) run dir, so the default `nobody`
    // workers could not even open the media root. Root workers on a loopback-only
    // throwaway server are the smaller evil than chmod'ing the run dir open.
    // Unprivileged runs ignore the directive (with a warning) and keep their own user.
    ...(process.getuid?.() === 0 ? ['user root root;'] : []),
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    mainContext,
    'events {}',
    'http {',
    `  ${ACCESS_LOG_FORMAT}`,
    `  access_log ${join(dir, 'access.log')} st_json;`,
    `  client_body_temp_path ${temp('client_body')};`,
    `  proxy_temp_path ${temp('proxy')};`,
    `  fastcgi_temp_path ${temp('fastcgi')};`,
    `  uwsgi_temp_path ${temp('uwsgi')};`,
    `  scgi_temp_path ${temp('scgi')};`,
    body,
    '}',
    '',
  ].join('\n');
}

function httpAnswers(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // Any status will do: the test's config decides what `/` returns.
    const req = request({ host: LOOPBACK, port, path: '/', method: 'HEAD', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------
// Workers. A SIGKILLed master (the runner's sweep, or the exit hook in
// processes.ts) leaves its worker alive, reparented to init and still serving
// on the port. processes.ts only knows the master, so the workers are recorded
// here in the same pid registry (registerPid) and killed on exit.

const liveWorkers = new Map<number, string | null>();
let workerExitHookInstalled = false;

function procStat(pid: number): { ppid: number; startTime: string | null } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: fields[19] ?? null };
  } catch {
    return null;
  }
}

function childPids(parent: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (procStat(Number(entry))?.ppid === parent) found.push(Number(entry));
  }
  return found;
}

function recordWorker(pid: number, name: string): void {
  if (liveWorkers.has(pid)) return;
  if (!workerExitHookInstalled) {
    workerExitHookInstalled = true;
    process.on('exit', () => {
      for (const worker of [...liveWorkers.keys()]) killWorker(worker);
    });
  }
  liveWorkers.set(pid, registerPid(pid, name, NGINX_BINARY));
}

function killWorker(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  forgetWorker(pid);
}

function forgetWorker(pid: number): void {
  const file = liveWorkers.get(pid);
  liveWorkers.delete(pid);
  unregisterPid(file ?? null);
}

// ---------------------------------------------------------------------------

class Nginx implements NginxServer {
  readonly host = LOOPBACK;
  readonly port: number;
  readonly dir: string;
  readonly baseUrl: string;
  readonly configFile: string;
  readonly errorLogFile: string;
  readonly accessLogFile: string;
  readonly #server: ManagedServer;
  readonly #workers = new Set<number>();
  // The readiness probes are ours, not the test's: accessLog() starts after them.
  #accessLogStart = 0;

  constructor(port: number, dir: string, readyTimeoutMs: number) {
    this.port = port;
    this.dir = dir;
    this.baseUrl = `http://${LOOPBACK}:${port}`;
    this.configFile = join(dir, 'nginx.conf');
    this.errorLogFile = join(dir, 'error.log');
    this.accessLogFile = join(dir, 'access.log');
    this.#server = new ManagedServer({
      name: `nginx:${port}`,
      command: NGINX_BINARY,
      // -e: nginx opens its compiled-in error log (stderr here, but /var/log on
      // other builds) before reading the config; point even that at our dir.
      args: ['-p', dir, '-c', this.configFile, '-e', this.errorLogFile],
      // stdout/stderr: nginx itself writes to error.log, this catches anything else.
      logFile: join(dir, 'nginx.out'),
      readyTimeoutMs,
      // SIGTERM is nginx's fast shutdown: workers are told to exit at once.
      stopTimeoutMs: 10_000,
      // nginx writes its pid file only after binding every listen socket; without
      // this, a server that took the port in between would answer for us.
      isReady: async () => this.#pidFileIsOurs() && (await httpAnswers(port)),
    });
  }

  get pid(): number {
    return this.#server.pid;
  }

  #pidFileIsOurs(): boolean {
    try {
      return Number(readFileSync(join(this.dir, 'nginx.pid'), 'utf8').trim()) === this.#server.pid;
    } catch {
      return false;
    }
  }

  async start(): Promise<void> {
    await this.#server.start();
    for (const worker of childPids(this.#server.pid)) {
      this.#workers.add(worker);
      recordWorker(worker, `nginx worker:${this.port}`);
    }
    try {
      this.#accessLogStart = statSync(this.accessLogFile).size;
    } catch {
      this.#accessLogStart = 0;
    }
  }

  errorLog(bytes = 4000): string {
    return logTail(this.errorLogFile, bytes);
  }

  accessLog(): NginxAccessEntry[] {
    let text: string;
    try {
      text = readFileSync(this.accessLogFile).subarray(this.#accessLogStart).toString('utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as NginxAccessEntry);
  }

  async stop(): Promise<void> {
    // Workers respawned after a crash are children too; catch them before the master goes.
    if (this.#server.running) for (const worker of childPids(this.#server.pid)) this.#workers.add(worker);
    await this.#server.stop();
    for (const worker of this.#workers) {
      // The master reaped them on a graceful stop; only a crashed master leaves some behind.
      const stat = procStat(worker);
      if (stat !== null && stat.ppid !== this.#server.pid) killWorker(worker);
      else forgetWorker(worker);
    }
    this.#workers.clear();
  }
}

/** Runs `nginx -t` so an invalid config fails with nginx's own words, not a readiness timeout. */
async function testConfig(dir: string, configFile: string, errorLogFile: string): Promise<void> {
  try {
    await execFileAsync(NGINX_BINARY, ['-t', '-q', '-p', dir, '-c', configFile, '-e', errorLogFile], { timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const message = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
    throw new Error(`nginx -t rejected the config:\n${message}\n--- ${configFile} ---\n${await readFile(configFile, 'utf8')}`, {
      cause: error,
    });
  }
}

/**
 * Starts nginx on a free 127.0.0.1 port; `build` returns what goes inside
 * `http { }` (server blocks must `listen 127.0.0.1:<port>`). Resolves once the
 * port answers HTTP. Paths in the config should be absolute: `-p` makes
 * relative ones resolve against the temp dir, not the repo.
 */
export async function startNginx(build: (ctx: NginxBuildContext) => string, options: StartNginxOptions = {}): Promise<NginxServer> {
  return startOnFreePort(
    'nginx',
    async (port) => {
      const dir = await makeTempDir('st-nginx');
      try {
        for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, 'temp', name), { recursive: true });
        const server = new Nginx(port, dir, options.readyTimeoutMs ?? 20_000);
        await writeFile(server.configFile, nginxConf(dir, build({ port, dir }), options.mainContext ?? ''));
        await testConfig(dir, server.configFile, server.errorLogFile);
        try {
          await server.start();
        } catch (error) {
          // nginx writes why it died (e.g. the port clash) to error.log, not to the stdout log ServerStartError holds.
          if (error instanceof ServerStartError)
            throw new ServerStartError(
              error.message.split('\n--- log tail ---\n')[0] ?? error.message,
              server.errorLog(),
              error.exit,
              error,
            );
          throw error;
        }
        return server;
      } catch (error) {
        if (process.env['ST_TEST_KEEP_DIRS'] !== '1') await rm(dir, { recursive: true, force: true });
        throw error;
      }
    },
    (error) => /Address already in use/i.test(error.log),
  );
}
