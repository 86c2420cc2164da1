// Builds and runs deploy/Dockerfile with podman on a machine with no registry: the base image it
// builds FROM is made locally (podman/base-image.sh), and podman runs with the settings this
// machine kind needs (podman/containers.conf). Everything goes through the podman CLI.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './node-server.ts';

const run = promisify(execFile);

/** The environment every podman call gets: this machine's settings (see containers.conf). */
export const PODMAN_ENV: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_CONF: join(REPO_ROOT, 'testkit', 'podman', 'containers.conf') };

export async function podman(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run('podman', [...args], { env: PODMAN_ENV, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`podman ${args.join(' ')}: ${(failed.stderr ?? '').slice(-4000) || failed.message}`, { cause: error });
  }
}

/** Node 24's bin dir, as test/node24.sh fetches it (the image's runtime). */
async function node24Dir(): Promise<string> {
  const { stdout } = await run('bash', [join(REPO_ROOT, 'test', 'node24.sh')], { timeout: 300_000 });
  return join(stdout.trim(), '..');
}

/** The base image (made once per Node version), then the image of deploy/Dockerfile's default target, tagged `tag`. */
export async function buildImage(tag: string): Promise<{ base: string }> {
  const { stdout } = await run('bash', [join(REPO_ROOT, 'testkit', 'podman', 'base-image.sh'), await node24Dir()], {
    env: PODMAN_ENV,
    timeout: 15 * 60_000,
  });
  const base = stdout.trim();
  // --network host: npm ci inside the build reaches the registry as this machine does.
  await podman(
    ['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-f', 'deploy/Dockerfile', '-t', tag, REPO_ROOT],
    15 * 60_000,
  );
  return { base };
}
