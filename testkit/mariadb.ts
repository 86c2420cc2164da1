// Throwaway MariaDB servers for tests: a real mariadbd on 127.0.0.1 with its
// own data dir, so fault tests can SIGKILL, SIGSTOP and restart it without
// touching the shared server on 3306.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { LOOPBACK, ManagedServer, errorMessage, makeTempDir, startInTempDirOnFreePort } from './processes.ts';

const execFileAsync = promisify(execFile);

export interface MariaDbTemplate {
  /** Holds `data/` and `credentials.json`; what ST_TEST_MARIADB_TEMPLATE points at. */
  readonly dir: string;
  readonly dataDir: string;
  readonly user: string;
  readonly password: string;
}

export interface MariaDbConnectionOptions {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** With TLS on: the test CA, verified (mysql2's `ssl`). */
  readonly ssl?: { readonly ca: string; readonly rejectUnauthorized: true };
}

/** PEM files for a server that accepts TLS only (e.g. from testkit/tls.ts). */
export interface MariaDbTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface MariaDbOptions {
  /** Serve TLS with these files and refuse every plain TCP connection (require_secure_transport). */
  readonly tls?: MariaDbTlsFiles;
}

export interface MariaDbServer extends Omit<MariaDbConnectionOptions, 'ssl'> {
  /** The files it serves TLS with, when started with `tls`. */
  readonly tls: MariaDbTlsFiles | undefined;
  /** Changes on restart. */
  readonly pid: number;
  readonly dataDir: string;
  /** mariadbd's stdout/stderr (its error log). */
  readonly logFile: string;
  /** host/port/user/password (and `ssl` with TLS on), for spreading into mysql2 options. */
  connectionOptions(): MariaDbConnectionOptions;
  stop(): Promise<void>;
  kill(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  restart(): Promise<void>;
}

const TEMPLATE_USER = 'st';
const INSTALL_TIMEOUT_MS = 120_000;

// Shared by install-db and every server: InnoDB sizes must match the
// template or each start would first resize the redo log.
const SPEED_FLAGS = [
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=8M',
  '--innodb-use-native-aio=0', // containers often cap aio contexts; many instances would hit it
  '--skip-performance-schema',
  '--skip-log-bin',
];

function runAsFlags(): string[] {
  // mariadbd refuses to run as root unless told to.
  return process.getuid?.() === 0 ? ['--user=root'] : [];
}

/**
 * Runs mariadb-install-db into `<parentDir>/mariadb-template-*`, with a TCP
 * user `st`@127.0.0.1 holding all privileges. Slow-ish, so made once per run
 * and copied per server.
 */
export async function createMariaDbTemplate(parentDir: string): Promise<MariaDbTemplate> {
  await mkdir(parentDir, { recursive: true });
  const dir = join(parentDir, `mariadb-template-${randomBytes(4).toString('hex')}`);
  const dataDir = join(dir, 'data');
  await mkdir(dir);
  const password = randomBytes(12).toString('hex');
  const sqlFile = join(dir, 'install.sql');
  // install-db bootstraps with grant tables off; FLUSH PRIVILEGES turns
  // them on so CREATE USER works.
  await writeFile(
    sqlFile,
    [
      'FLUSH PRIVILEGES;',
      `CREATE USER '${TEMPLATE_USER}'@'${LOOPBACK}' IDENTIFIED BY '${password}';`,
      `GRANT ALL PRIVILEGES ON *.* TO '${TEMPLATE_USER}'@'${LOOPBACK}' WITH GRANT OPTION;`,
      '',
    ].join('\n'),
  );
  try {
    const { stdout, stderr } = await execFileAsync(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        ...runAsFlags(),
        '--auth-root-authentication-method=socket',
        '--skip-test-db',
        '--skip-name-resolve',
        `--extra-file=${sqlFile}`,
        ...SPEED_FLAGS,
      ],
      { timeout: INSTALL_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: withSbinPath() },
    );
    await writeFile(join(dir, 'install.log'), stdout + stderr);
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    throw new Error(`mariadb-install-db failed: ${errorMessage(error)}\n${output.stdout ?? ''}${output.stderr ?? ''}`, { cause: error });
  }
  const template: MariaDbTemplate = { dir, dataDir, user: TEMPLATE_USER, password };
  await writeFile(join(dir, 'credentials.json'), JSON.stringify({ user: TEMPLATE_USER, password }));
  return template;
}

export async function loadMariaDbTemplate(dir: string): Promise<MariaDbTemplate> {
  const credentials = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as { user: string; password: string };
  return { dir, dataDir: join(dir, 'data'), user: credentials.user, password: credentials.password };
}

let templatePromise: Promise<MariaDbTemplate> | undefined;

function template(): Promise<MariaDbTemplate> {
  const fromRunner = process.env['ST_TEST_MARIADB_TEMPLATE'];
  templatePromise ??=
    fromRunner !== undefined && fromRunner !== ''
      ? loadMariaDbTemplate(fromRunner)
      : makeTempDir('st-mariadb-tpl').then(createMariaDbTemplate);
  // A failed attempt must not poison every later test in the file.
  templatePromise.catch(() => {
    templatePromise = undefined;
  });
  return templatePromise;
}

function withSbinPath(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/local/sbin:/usr/sbin:/sbin` };
}

class MariaDb extends ManagedServer implements MariaDbServer {
  readonly host = LOOPBACK;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dataDir: string;
  readonly tls: MariaDbTlsFiles | undefined;
  readonly #ssl: MariaDbConnectionOptions['ssl'];

  constructor(options: { port: number; user: string; password: string; dir: string; tls: MariaDbTlsFiles | undefined }) {
    const dataDir = join(options.dir, 'data');
    const socket = join(options.dir, 'mysqld.sock');
    const pidFile = join(options.dir, 'mysqld.pid');
    const tmpDir = join(options.dir, 'tmp');
    const { port, user, password, tls } = options;
    const ssl = tls === undefined ? undefined : ({ ca: readFileSync(tls.caFile, 'utf8'), rejectUnauthorized: true } as const);
    super({
      name: `mariadbd:${port}`,
      command: '/usr/sbin/mariadbd',
      args: [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--pid-file=${pidFile}`,
        `--tmpdir=${tmpDir}`,
        `--bind-address=${LOOPBACK}`,
        `--port=${port}`,
        ...runAsFlags(),
        '--skip-name-resolve',
        ...SPEED_FLAGS,
        // Survives a process SIGKILL (the log is in the page cache), not an
        // OS crash, which tests never cause.
        '--innodb-flush-log-at-trx-commit=2',
        '--innodb-doublewrite=0',
        // What Debian's server config sets; --no-defaults would give latin1.
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_general_ci',
        ...(tls === undefined
          ? []
          : [
              `--ssl-ca=${tls.caFile}`,
              `--ssl-cert=${tls.certFile}`,
              `--ssl-key=${tls.keyFile}`,
              // TCP without TLS is refused (the socket stays allowed: it is local).
              '--require-secure-transport=ON',
            ]),
      ],
      logFile: join(options.dir, 'mariadbd.log'),
      readyTimeoutMs: 60_000,
      stopTimeoutMs: 30_000,
      beforeStart: async () => {
        // A SIGKILLed server leaves these; clear them so the restart is clean.
        await rm(socket, { force: true });
        await rm(pidFile, { force: true });
        await mkdir(tmpDir, { recursive: true });
      },
      isReady: () => canQuery({ host: LOOPBACK, port, user, password, ...(ssl === undefined ? {} : { ssl }) }),
    });
    this.port = port;
    this.user = user;
    this.password = password;
    this.dataDir = dataDir;
    this.tls = tls;
    this.#ssl = ssl;
  }

  connectionOptions(): MariaDbConnectionOptions {
    const options: MariaDbConnectionOptions = { host: this.host, port: this.port, user: this.user, password: this.password };
    return this.#ssl === undefined ? options : { ...options, ssl: this.#ssl };
  }
}

async function canQuery(options: MariaDbConnectionOptions): Promise<boolean> {
  const connection = await mysql.createConnection({ ...options, connectTimeout: 2_000 });
  try {
    await connection.query('SELECT 1');
    return true;
  } finally {
    connection.destroy();
  }
}

/**
 * Starts a fresh mariadbd on a free 127.0.0.1 port from a copy of the run's
 * template data dir. Resolves once user+password log in over TCP (over TLS
 * with `tls`) and query.
 */
export async function startMariaDb(options: MariaDbOptions = {}): Promise<MariaDbServer> {
  const tpl = await template();
  return startInTempDirOnFreePort(
    'mariadb',
    'st-mariadb',
    async (port, dir) => {
      await cp(tpl.dataDir, join(dir, 'data'), { recursive: true });
      return new MariaDb({ port, user: tpl.user, password: tpl.password, dir, tls: options.tls });
    },
    (error) => /Address already in use|Bind on TCP\/IP port/i.test(error.log),
  );
}
