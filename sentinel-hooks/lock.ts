// One writer per host: a hook and the reconcile timer that read the truth at different moments
// must not interleave their writes (the older reading could undo the newer one). An O_EXCL file,
// broken when its holder is dead or older than any run can live (Sentinel kills at 60 s).
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { errorOfKind } from '../common/cli/errors.ts';

export class LockBusyError extends errorOfKind('LockBusyError', 'transient') {}

const STALE_AFTER_MS = 90_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function breakIfStale(path: string): Promise<void> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const pid = Number(text.split(' ')[0]);
    if ((Number.isInteger(pid) && pid > 0 && !alive(pid)) || Date.now() - info.mtimeMs > STALE_AFTER_MS) await unlink(path);
  } catch {
    // Released or broken by someone else meanwhile: the next attempt sees.
  }
}

export async function acquireLock(path: string, waitMs: number, signal: AbortSignal): Promise<() => Promise<void>> {
  const token = `${process.pid} ${Date.now()} ${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o660);
      await handle.writeFile(token);
      await handle.close();
      return async () => {
        try {
          if ((await readFile(path, 'utf8')) === token) await unlink(path);
        } catch {
          // Already broken as stale; nothing of ours to remove.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await breakIfStale(path);
    if (Date.now() >= deadline || signal.aborted) break;
    await delay(25 + Math.random() * 25);
  }
  throw new LockBusyError(`lock ${path} still held after ${waitMs} ms`);
}
