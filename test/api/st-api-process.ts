// st-api as production runs it: the real entry point (api/main.ts) in its own process, reading a
// configuration file, so tests see its real HTTP server, its signal handling and its exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedDemo, type EmbeddedDemo } from '../../api/demo/embedded.ts';
import { makeTempDir, registerPid, unregisterPid, waitFor } from '../../testkit/processes.ts';

export const API_MAIN = join(import.meta.dirname, '..', '..', 'api', 'main.ts');

export interface StApiProcess {
  child: ChildProcess;
  baseUrl: string;
  port: number;
  demo: EmbeddedDemo;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its exit code (null if a signal killed it) and the time it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILL, for clean-up. */
  kill(): Promise<void>;
}

/** The demo configuration with the embedded demo's keys, on a free loopback port, `overrides` merged over it. */
export async function startStApiProcess(overrides: Record<string, unknown> = {}): Promise<StApiProcess> {
  const demo = embeddedDemo();
  const dir = await makeTempDir('st-api-process');
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...demo.rawConfig, listen: { host: '127.0.0.1', port: 0 }, logLevel: 'info', ...overrides }));
  // ST_API_HOST and ST_API_PORT (or PORT) would override listen, ST_API_ADMIN_* admin.
  const env = { ...process.env };
  for (const name of ['ST_API_HOST', 'ST_API_PORT', 'PORT', 'ST_API_ADMIN_HOST', 'ST_API_ADMIN_PORT']) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', API_MAIN], {
    env: { ...env, ST_API_CONFIG: configFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pidFile = child.pid === undefined ? null : registerPid(child.pid, 'st-api', API_MAIN);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => {
    unregisterPid(pidFile);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, at: Date.now() };
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const port = await waitFor(
    () => {
      if (gone) throw new Error(`st-api exited during start-up:\n${output}`);
      const match = /"port":(\d+).*"msg":"st-api listening"/.exec(output);
      return match === null ? undefined : Number(match[1]);
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'st-api to listen' },
  );
  return {
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    demo,
    output: () => output,
    exited,
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}
