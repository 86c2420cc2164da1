// Test entry point (`npm test [filter…]`). Node 20's runner cannot glob .ts
// files itself, and the real servers tests start need a per-run home and a
// sweep afterwards that survives a crashed or timed-out test file.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMariaDbTemplate } from '../testkit/mariadb.ts';
import { killRecordedPids } from '../testkit/processes.ts';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
// Tests live in test/; the doubles and the testkit keep theirs beside the code they test.
const testRoots = ['test', 'doubles', 'testkit'].map((dir) => join(repoRoot, dir));
const globalTimeoutMs = Number(process.env['ST_TEST_TIMEOUT_MS'] ?? 35 * 60_000);
// A single hung test must fail on its own rather than eat the global budget.
const perTestTimeoutMs = Number(process.env['ST_TEST_PER_TEST_TIMEOUT_MS'] ?? 5 * 60_000);

function findTestFiles(dir: string, depth = 0): string[] {
  if (depth > 20) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(path, depth + 1));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = testRoots
  .flatMap((dir) => findTestFiles(dir))
  .map((path) => relative(repoRoot, path).split(sep).join('/'))
  .filter((path) => filters.length === 0 || filters.some((filter) => path.includes(filter)))
  .sort();

if (files.length === 0) {
  process.stderr.write(`run: no test files match ${filters.length === 0 ? '{test,doubles,testkit}/**/*.test.ts' : filters.join(' ')}\n`);
  process.exit(1);
}

const runDir = mkdtempSync(join(tmpdir(), 'st-test-'));
process.env['ST_TEST_RUN_DIR'] = runDir;

let cleanedUp = false;
async function cleanUp(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  const killed = await killRecordedPids(runDir);
  for (const { pid, name } of killed) process.stderr.write(`run: killed leftover ${name} (pid ${pid})\n`);
  if (process.env['ST_TEST_KEEP_DIRS'] === '1') process.stderr.write(`run: kept ${runDir} (ST_TEST_KEEP_DIRS=1)\n`);
  else rmSync(runDir, { recursive: true, force: true });
}

let testRunner: ReturnType<typeof spawn> | undefined;
let stopping = false;

async function stopOnSignal(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`run: ${signal}, stopping tests and cleaning up\n`);
  if (testRunner?.exitCode === null) {
    testRunner.kill(signal);
    const exited = new Promise((resolve) => testRunner?.once('exit', resolve));
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (testRunner.exitCode === null) testRunner.kill('SIGKILL');
  }
  await cleanUp();
  process.exit(128 + constants.signals[signal]);
}
process.on('SIGINT', (signal) => void stopOnSignal(signal));
process.on('SIGTERM', (signal) => void stopOnSignal(signal));

async function main(): Promise<number> {
  const started = Date.now();
  const template = await createMariaDbTemplate(runDir);
  process.env['ST_TEST_MARIADB_TEMPLATE'] = template.dir;
  process.stderr.write(`run: MariaDB template made in ${Date.now() - started} ms; running ${files.length} file(s)\n`);

  const args = [
    '--import',
    'tsx',
    '--test',
    // One file at a time: the failover and fault tests assert time bounds (DNS within failover + 1 s,
    // plays under a stalled dependency), and two such files side by side on this project's 2-core
    // machines break them for reasons that are not the code's.
    '--test-concurrency=1',
    `--test-timeout=${perTestTimeoutMs}`,
    // TAP always, so the "# pass N" / "# fail N" summary appears even on a TTY.
    '--test-reporter=tap',
    ...files,
  ];
  testRunner = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'inherit', env: process.env });
  const runner = testRunner;

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.stderr.write(`run: global timeout of ${globalTimeoutMs} ms reached, killing the test runner\n`);
    runner.kill('SIGTERM');
    setTimeout(() => runner.kill('SIGKILL'), 10_000).unref();
  }, globalTimeoutMs);

  const code = await new Promise<number>((resolve) => {
    runner.once('error', (error) => {
      process.stderr.write(`run: cannot start the test runner: ${error.message}\n`);
      resolve(1);
    });
    runner.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal === null ? 1 : 128 + constants.signals[signal])));
  });
  clearTimeout(timer);
  return timedOut ? 124 : code;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  process.stderr.write(`run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
} finally {
  if (!stopping) await cleanUp();
}
if (!stopping) process.exit(exitCode);
