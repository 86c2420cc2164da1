// The hooks' one-writer-per-host lock (sentinel-hooks/lock.ts) on a real file system: it excludes,
// it waits no longer than told, and a lock left behind by a dead or long-gone run is broken instead
// of blocking every later hook until someone deletes the file by hand.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { acquireLock, LockBusyError } from '../../sentinel-hooks/lock.ts';
import { makeTempDir, sleep } from '../../testkit/processes.ts';

/** Older than any hook run can live (Sentinel kills a script at 60 s; the lock breaks after 90 s). */
const LONG_AGO_S = 120;
const never = new AbortController().signal;

async function lockPath(): Promise<string> {
  return join(await makeTempDir('st-hooks-lock'), 'host.lock');
}

/** A holder written as lock.ts writes it: `<pid> <ms> <random>`. */
async function holdAs(path: string, pid: number | string, ageSeconds = 0): Promise<string> {
  const text = `${pid} ${Date.now()} held-by-test`;
  await writeFile(path, text);
  if (ageSeconds > 0) {
    const then = Date.now() / 1000 - ageSeconds;
    await utimes(path, then, then);
  }
  return text;
}

/** A process that is alive for the whole test. */
async function livingProcess(t: TestContext): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120_000)'], { stdio: 'ignore' });
  await once(child, 'spawn');
  t.after(() => child.kill('SIGKILL'));
  return child;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  assert.ok(child.pid !== undefined);
  return child.pid;
}

/** Rejects if `work` has not settled within `ms`: a wait that ignores its bound fails instead of hanging. */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([work, hung]).finally(() => clearTimeout(timer));
}

describe("the hooks' file lock", () => {
  it('when runs overlap, then only one holds the lock at a time, and each gets it once the other releases', async () => {
    const path = await lockPath();
    let holders = 0;
    let most = 0;
    const run = async (): Promise<void> => {
      const release = await acquireLock(path, 20_000, never);
      holders++;
      most = Math.max(most, holders);
      await sleep(20);
      holders--;
      await release();
    };
    await within(Promise.all(Array.from({ length: 8 }, run)), 30_000, 'eight overlapping runs');
    assert.equal(most, 1, 'two runs held the lock at once');
    assert.equal(existsSync(path), false, 'the last release removed the file');
  });

  it('when a live process holds a fresh lock, then acquireLock waits its bound, fails with LockBusyError and leaves the file alone', async (t) => {
    const path = await lockPath();
    const holder = await livingProcess(t);
    const held = await holdAs(path, holder.pid ?? 0);
    const started = Date.now();
    await assert.rejects(within(acquireLock(path, 300, never), 10_000, 'a busy lock'), LockBusyError);
    assert.ok(Date.now() - started >= 300, `gave up after ${Date.now() - started} ms, before its 300 ms wait`);
    assert.equal(await readFile(path, 'utf8'), held);
  });

  it("when the holder's process is dead, then the lock is broken and taken at once", async () => {
    const path = await lockPath();
    await holdAs(path, await deadPid());
    // Far shorter than the 90 s age rule: only the dead pid can free it.
    const release = await within(acquireLock(path, 2000, never), 10_000, 'a lock of a dead process');
    assert.match(await readFile(path, 'utf8'), new RegExp(`^${process.pid} `));
    await release();
    assert.equal(existsSync(path), false);
  });

  it('when the holder is alive but the lock is older than any run can live, then it is broken and taken', async (t) => {
    const path = await lockPath();
    const holder = await livingProcess(t);
    await holdAs(path, holder.pid ?? 0, LONG_AGO_S);
    const release = await within(acquireLock(path, 2000, never), 10_000, 'a lock left long ago');
    assert.match(await readFile(path, 'utf8'), new RegExp(`^${process.pid} `));
    await release();
  });

  it('when the file names no pid, then it is respected while fresh and broken once old', async () => {
    const path = await lockPath();
    const held = await holdAs(path, 'garbage');
    await assert.rejects(within(acquireLock(path, 200, never), 10_000, 'a fresh unreadable lock'), LockBusyError);
    assert.equal(await readFile(path, 'utf8'), held);
    await holdAs(path, 'garbage', LONG_AGO_S);
    const release = await within(acquireLock(path, 2000, never), 10_000, 'an old unreadable lock');
    await release();
  });

  it("when a run's lock was broken and taken by another, then its release leaves the other's lock in place", async () => {
    const path = await lockPath();
    const release = await acquireLock(path, 2000, never);
    const other = await holdAs(path, process.pid);
    await release();
    assert.equal(await readFile(path, 'utf8'), other);
  });

  it('when the run is aborted (its deadline), then a busy lock is given up at once, not after the whole wait', async (t) => {
    const path = await lockPath();
    const holder = await livingProcess(t);
    await holdAs(path, holder.pid ?? 0);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(within(acquireLock(path, 60_000, aborted.signal), 10_000, 'a busy lock with the run aborted'), LockBusyError);
  });
});
