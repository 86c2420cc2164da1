// The image and the systemd units, checked without Docker or systemd: the Dockerfile's promises
// (Node LTS, non-root, production dependencies only, liveness HEALTHCHECK, SIGTERM), a real
// `npm run build` equivalent whose output runs under plain node, the HEALTHCHECK command itself run
// against a live node, and the units' hardening and stop timeout against st-api's defaults.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { freePort, makeTempDir, waitFor } from '../../testkit/processes.ts';
import { createTestCa } from '../../testkit/tls.ts';
import { startTestNode } from '../../testkit/service.ts';
import { bundleHooks } from '../../sentinel-hooks/bundle.ts';
import { builtByNpmRunBuild } from './dist-paths.ts';
import { REPO } from '../watcher/harness.ts';

const run = promisify(execFile);
const DOCKERFILE = readFileSync(join(REPO, 'deploy', 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

/** Instructions of one stage, by name. */
function stage(name: string): string {
  const start = DOCKERFILE.search(new RegExp(`^FROM \\S+ AS ${name}$`, 'm'));
  assert.ok(start >= 0, `stage ${name}`);
  const rest = DOCKERFILE.slice(start + 1);
  const next = rest.search(/^FROM /m);
  return next < 0 ? rest : rest.slice(0, next);
}

describe('deploy/Dockerfile', () => {
  it('when read, then it builds on Node 24 LTS slim, in stages, with the API as the default target', () => {
    assert.match(DOCKERFILE, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    const froms = [...DOCKERFILE.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => m[2]);
    assert.equal(froms.at(-1), 'st-api', 'the last stage is what a plain `docker build` produces');
    assert.match(stage('build'), /npm ci /);
    assert.match(stage('build'), /npm run build/);
  });

  it('when the runtime stage is read, then it has production dependencies only, dist/ only, runs as node, and drains on SIGTERM', () => {
    const runtime = stage('runtime');
    assert.match(stage('prod-deps'), /npm ci --omit=dev/);
    assert.match(runtime, /COPY --from=prod-deps \/src\/node_modules/);
    assert.match(runtime, /COPY --from=build \/src\/dist \.\/dist/);
    assert.doesNotMatch(runtime, /COPY (?!package\.json|--from)/, 'no sources copied into the runtime');
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /^ENV NODE_ENV=production$/m);
    assert.match(runtime, /^EXPOSE 8080$/m);
    // `docker run -p 8080:8080` reaches the embedded demo only on the wildcard address.
    assert.match(runtime, /^ENV ST_API_HOST=0\.0\.0\.0$/m);
    assert.match(runtime, /^STOPSIGNAL SIGTERM$/m);
    assert.match(runtime, /^ENTRYPOINT \["node"\]$/m);
    assert.match(runtime, /^CMD \["dist\/api\/main\.js"\]$/m);
    assert.ok(!('tsx' in pkg.dependencies), 'tsx stays a devDependency: the image runs compiled JavaScript');
    const instructions = runtime
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n');
    assert.doesNotMatch(instructions, /curl|wget/, 'no HTTP client installed for the healthcheck');
  });

  it('when the API target is built, then the commit passed as a build argument reaches the node (build info)', () => {
    const api = stage('st-api');
    assert.match(api, /^ARG ST_API_COMMIT=unknown$/m);
    assert.match(api, /^ENV ST_API_COMMIT=\$\{ST_API_COMMIT\}$/m);
  });

  it('when the build context is filtered, then deploy/Dockerfile.dockerignore lets in only what the build stage copies', () => {
    const ignore = readFileSync(join(REPO, 'deploy', 'Dockerfile.dockerignore'), 'utf8');
    const allowed = [...ignore.matchAll(/^!(\S+?)\/?$/gm)].map((m) => m[1]).sort();
    const copied = [...stage('build').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] ?? '').split(' ')).sort();
    assert.deepEqual(allowed, copied);
  });

  describe('the HEALTHCHECK command', () => {
    const args = JSON.parse(/^ {2}CMD (\[.*\])$/m.exec(stage('runtime'))?.[1] ?? '[]') as string[];
    let node: Awaited<ReturnType<typeof startTestNode>>;
    before(async () => {
      node = await startTestNode();
    });
    after(async () => {
      await node.close();
    });

    it('when st-api answers /health/live, then it exits 0', async () => {
      assert.equal(args[0], 'node');
      assert.match(args[2] ?? '', /\/health\/live/);
      const port = new URL(node.baseUrl).port;
      await run(process.execPath, args.slice(1), { env: { ST_API_PORT: port }, timeout: 10_000 });
    });

    it('when st-api serves HTTPS (listen.tls), then it exits 0 too', async () => {
      const ca = createTestCa(await makeTempDir('st-healthcheck-tls'));
      const https = await startTestNode({ tls: ca.server('st-api', ['play.example.com']) });
      try {
        assert.ok(https.baseUrl.startsWith('https://'));
        await run(process.execPath, args.slice(1), { env: { ST_API_PORT: new URL(https.baseUrl).port }, timeout: 10_000 });
      } finally {
        await https.close();
      }
    });

    it('when nothing listens, then it exits 1 within its own timeout', async () => {
      const port = String(await freePort());
      await assert.rejects(
        run(process.execPath, args.slice(1), { env: { ST_API_PORT: port }, timeout: 10_000 }),
        (error: { code?: number }) => error.code === 1,
      );
    });
  });

  describe('the build output', () => {
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'st-deploy-build-'));
      // The same steps as the npm "build" script, into a scratch directory.
      assert.match(
        pkg.scripts.build ?? '',
        /^tsc -p tsconfig\.build\.json && cp -r api\/catalog\/migrations dist\/api\/catalog\/ && cp api\/openapi\.yaml dist\/api\/ && tsx sentinel-hooks\/bundle\.ts dist\/sentinel-hooks\.mjs$/,
      );
      await run(
        process.execPath,
        [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')],
        { cwd: REPO, timeout: 120_000 },
      );
      cpSync(join(REPO, 'api', 'catalog', 'migrations'), join(dir, 'dist', 'api', 'catalog', 'migrations'), { recursive: true });
      cpSync(join(REPO, 'api', 'openapi.yaml'), join(dir, 'dist', 'api', 'openapi.yaml'));
      await bundleHooks(join(dir, 'dist', 'sentinel-hooks.mjs'));
      // As the image does: package.json beside dist/ (its "type": "module", its version).
      cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
      symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('when built, then the three programs and the SQL migrations are in dist/', () => {
      for (const main of ['api/main.js', 'watcher/main.js', 'sentinel-hooks.mjs', 'api/catalog/migrate-cli.js'])
        assert.ok(existsSync(join(dir, 'dist', main)), main);
      assert.ok(!existsSync(join(dir, 'dist', 'sentinel-hooks', 'bundle.js')), 'the bundler is a build step, not part of dist/');
      assert.ok(readdirSync(join(dir, 'dist', 'api', 'catalog', 'migrations')).some((file) => file.endsWith('.sql')));
      assert.ok(existsSync(join(dir, 'dist', 'api', 'openapi.yaml')), 'GET /openapi.json is served from it');
    });

    it('when dist/ imports a package, then it is a production dependency or a Node built-in', () => {
      const files = (readdirSync(join(dir, 'dist'), { recursive: true }) as string[]).filter((file) => file.endsWith('.js'));
      const builtins = new Set(builtinModules);
      for (const file of files) {
        const text = readFileSync(join(dir, 'dist', file), 'utf8');
        for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) {
          const specifier = match[1] ?? '';
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? '');
          assert.ok(
            specifier.startsWith('node:') || builtins.has(name) || name in pkg.dependencies,
            `${file} imports ${specifier}, which is not a production dependency`,
          );
        }
      }
    });

    it('when the API runs under plain node from dist/, then it serves /openapi.json and names its version and commit', async () => {
      const port = await freePort();
      const child = spawn(process.execPath, [join(dir, 'dist', 'api', 'main.js')], {
        cwd: dir,
        env: { PATH: process.env['PATH'] ?? '', ST_API_HOST: '127.0.0.1', ST_API_PORT: String(port), ST_API_COMMIT: 'feedc0de' },
        stdio: 'ignore',
      });
      try {
        const base = `http://127.0.0.1:${port}`;
        const live = await waitFor(async () => (await fetch(`${base}/health/live`).catch(() => undefined))?.text(), {
          timeoutMs: 20_000,
          intervalMs: 100,
          what: 'the built API to answer',
        });
        assert.equal(live, `ok version=${pkg.version} commit=feedc0de`);
        const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string; servers: { url: string }[] };
        assert.equal(doc.openapi, '3.1.0');
        assert.equal(doc.servers[0]?.url, base);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('when the watcher and the hooks run under plain node (no tsx), then they start', async () => {
      const watcher = await run(process.execPath, [join(dir, 'dist', 'watcher', 'main.js'), '--help'], { cwd: dir, timeout: 20_000 });
      assert.match(watcher.stdout, /^Usage: watcher/);
      const hooks = await run(process.execPath, [join(dir, 'dist', 'sentinel-hooks.mjs'), '--help'], { cwd: dir, timeout: 20_000 });
      assert.match(hooks.stdout, /^Usage: sentinel-hooks/);
    });

    it('when the hooks bundle is alone (no node_modules, no package.json), then it still runs: Sentinel execs nothing else', async () => {
      const alone = mkdtempSync(join(tmpdir(), 'st-hooks-alone-'));
      try {
        cpSync(join(dir, 'dist', 'sentinel-hooks.mjs'), join(alone, 'sentinel-hooks.mjs'));
        const hooks = await run(process.execPath, [join(alone, 'sentinel-hooks.mjs'), '--help'], { cwd: alone, timeout: 20_000 });
        assert.match(hooks.stdout, /^Usage: sentinel-hooks/);
        // A real run that loads the configuration (zod) and fails on it: exit 2, reason on stderr.
        const failed = await run(
          process.execPath,
          [join(alone, 'sentinel-hooks.mjs'), '--config', join(alone, 'missing.json'), 'reconcile'],
          { cwd: alone, timeout: 20_000 },
        ).then(
          () => ({ code: 0, stderr: '' }),
          (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
        );
        assert.equal(failed.code, 2);
        assert.match(failed.stderr, /cannot read .*missing\.json as JSON/);
      } finally {
        rmSync(alone, { recursive: true, force: true });
      }
    });
  });
});

/** [Section] key=value lines; repeated keys keep every value. */
function unit(path: string): Map<string, string[]> {
  const entries = new Map<string, string[]>();
  for (const line of readFileSync(join(REPO, 'deploy', 'systemd', path), 'utf8').split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match === null) continue;
    entries.set(match[1] ?? '', [...(entries.get(match[1] ?? '') ?? []), match[2] ?? '']);
  }
  return entries;
}

function seconds(value: string): number {
  const match = /^(\d+)(s|min)?$/.exec(value);
  assert.ok(match !== null, value);
  return Number(match[1]) * (match[2] === 'min' ? 60 : 1);
}

describe('deploy/systemd', () => {
  const services = [
    'st-api.service',
    'st-dns-reconcile.service',
    'st-redis-reconcile.service',
    'consul.service.d/st-dns-watcher.conf',
    'redis-sentinel.service.d/st-api-hooks.conf',
  ];

  it('when st-api.service stops the node, then it sends SIGTERM and waits longer than the drain and shutdown timeouts', () => {
    const { rawConfig } = embeddedDemo();
    const withoutDemoShutdown = Object.fromEntries(Object.entries(rawConfig).filter(([key]) => key !== 'shutdown'));
    const defaults = parseConfig(withoutDemoShutdown, {}).shutdown;
    const api = unit('st-api.service');
    assert.deepEqual(api.get('KillSignal'), ['SIGTERM']);
    assert.ok(seconds(api.get('TimeoutStopSec')?.[0] ?? '0') * 1000 > defaults.drainMs + defaults.timeoutMs);
    assert.deepEqual(api.get('Restart'), ['on-failure']);
    assert.deepEqual(api.get('RestartPreventExitStatus'), ['78']);
    // systemctl reload: SIGHUP makes st-api re-read its TLS certificate files (api/main.ts).
    assert.deepEqual(api.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  });

  it('when st-api.service starts, then it runs compiled code with its configuration and secrets, hardened', () => {
    const api = unit('st-api.service');
    assert.deepEqual(api.get('ExecStart'), ['/usr/bin/node /opt/st-api/dist/api/main.js']);
    assert.ok(api.get('Environment')?.includes('ST_API_CONFIG=/etc/st-api/config.json'));
    assert.ok((api.get('EnvironmentFile') ?? []).length === 1);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['PrivateTmp', 'yes'],
      ['User', 'st-api'],
    ] as const)
      assert.deepEqual(api.get(key), [value], key);
  });

  it('when any unit runs node, then MemoryDenyWriteExecute stays off for V8 and ExecStart paths are built files', () => {
    for (const file of services) {
      const entries = unit(file);
      assert.deepEqual(entries.get('MemoryDenyWriteExecute'), ['no'], file);
      for (const exec of entries.get('ExecStart') ?? []) {
        const script = /\/opt\/st-api\/(dist\/\S+\.m?js)/.exec(exec)?.[1];
        assert.ok(script !== undefined && builtByNpmRunBuild(script), exec);
      }
    }
  });

  it('when the timers fire, then they run the reconcile services (watcher every 2 min, hooks every 5 s within the check TTL)', () => {
    assert.deepEqual(unit('st-dns-reconcile.service').get('ExecStart'), ['/usr/bin/node /opt/st-api/dist/watcher/main.js reconcile']);
    assert.deepEqual(unit('st-redis-reconcile.service').get('ExecStart'), ['/usr/bin/node /opt/st-api/dist/sentinel-hooks.mjs reconcile']);
    assert.ok(seconds(unit('st-dns-reconcile.timer').get('OnUnitActiveSec')?.[0] ?? '') <= 300);
    // README: checkTtlSeconds (15 s default) must stay ≥ 3 × the timer period.
    assert.ok(seconds(unit('st-redis-reconcile.timer').get('OnUnitActiveSec')?.[0] ?? '') * 3 <= 15);
  });

  it('when the Consul agent runs the watch, then its drop-in gives the handler its configuration and no Consul token', () => {
    const dropIn = unit('consul.service.d/st-dns-watcher.conf');
    assert.ok(dropIn.get('Environment')?.includes('ST_DNS_CONFIG=/etc/st-api/dns-watcher.json'));
    // The token comes through dns-watcher.json (consulTokenFile); in the agent's environment it would be every watch's token.
    assert.ok(!(dropIn.get('Environment') ?? []).some((assignment) => assignment.startsWith('CONSUL_')));
    assert.deepEqual(dropIn.get('EnvironmentFile'), ['-/etc/st-api/dns-watcher.env'], 'optional (AWS keys only where no instance role)');
    assert.deepEqual(
      unit('st-dns-reconcile.service').get('EnvironmentFile'),
      ['-/etc/st-api/dns-watcher.env'],
      'the same file name in both units',
    );
    const hooks = unit('redis-sentinel.service.d/st-api-hooks.conf');
    assert.ok((hooks.get('ReadWritePaths') ?? []).includes('/run/st-api-sentinel-hooks'));
    assert.match(
      readFileSync(join(REPO, 'deploy', 'systemd', 'tmpfiles.d', 'st-api-sentinel-hooks.conf'), 'utf8'),
      /^d \/run\/st-api-sentinel-hooks /m,
    );
  });
});
