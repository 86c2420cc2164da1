// deploy/compose.yaml cannot be run here (no Docker engine), so everything that can be checked
// without one is: the YAML, the service graph, the build targets, the paths inside the image, the
// mounted files, and that the configurations it mounts are ones the programs accept.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../api/config.ts';
import { hooksConfigSchema } from '../../sentinel-hooks/config.ts';
import { REPO } from '../watcher/harness.ts';
import { builtByNpmRunBuild } from './dist-paths.ts';

const DEPLOY = join(REPO, 'deploy');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  restart?: string;
  networks?: Record<string, { ipv4_address?: string }> | string[];
  stop_grace_period?: string;
}

const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
const stages = new Set([...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]));
const workdir = /^WORKDIR (\S+)$/m.exec(dockerfile.slice(dockerfile.indexOf('AS runtime')))?.[1] ?? '';

function ip(name: string): string {
  const networks = services[name]?.networks;
  const address = networks === undefined || Array.isArray(networks) ? undefined : networks['st-dev']?.ipv4_address;
  assert.ok(address !== undefined, `${name} has a fixed address`);
  return address;
}

describe('deploy/compose.yaml', () => {
  it('when parsed, then it holds the whole development stack', () => {
    for (const name of [
      'consul-server',
      'mariadb',
      'redis-1',
      'redis-2',
      'redis-3',
      'sentinel-1',
      'sentinel-2',
      'sentinel-3',
      'api-1',
      'api-2',
      'consul-api-1',
      'consul-api-2',
      'moto',
    ]) {
      assert.ok(services[name] !== undefined, `service ${name}`);
    }
    assert.match(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8').slice(0, 1500), /NOT RUN HERE/);
  });

  it('when a service depends on another, then that service exists, and a one-shot it waits for does not restart', () => {
    for (const [name, service] of Object.entries(services)) {
      const deps =
        service.depends_on === undefined
          ? []
          : Array.isArray(service.depends_on)
            ? service.depends_on.map((d) => [d, 'service_started'] as const)
            : Object.entries(service.depends_on).map(([d, v]) => [d, v.condition] as const);
      for (const [dep, condition] of deps) {
        assert.ok(services[dep] !== undefined, `${name} depends on unknown ${dep}`);
        if (condition === 'service_completed_successfully') assert.equal(services[dep]?.restart, 'no', `${dep} is a one-shot`);
        if (condition === 'service_healthy')
          assert.ok((services[dep] as { healthcheck?: unknown }).healthcheck !== undefined, `${dep} has a healthcheck`);
      }
    }
  });

  it('when a service is built, then it uses deploy/Dockerfile from the repository root and one of its stages', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build === undefined) {
        assert.ok(service.image !== undefined && /:\d/.test(service.image), `${name}: a pinned image`);
        continue;
      }
      assert.equal(resolve(DEPLOY, service.build.context), REPO, name);
      assert.ok(existsSync(join(REPO, service.build.dockerfile)), name);
      assert.ok(
        service.build.target !== undefined && stages.has(service.build.target),
        `${name}: target ${service.build.target} is a stage of deploy/Dockerfile`,
      );
    }
  });

  it('when a command names a dist/ file, then `npm run build` produces it and it resolves from the image WORKDIR', () => {
    assert.equal(workdir, '/opt/st-api');
    const paths: string[] = [];
    for (const service of Object.values(services))
      paths.push(
        ...[...(service.entrypoint ?? []), ...(service.command ?? [])].flatMap(
          (arg) => arg.match(/(?:\/opt\/st-api\/)?dist\/[\w/.-]+\.m?js/g) ?? [],
        ),
      );
    for (const file of ['api-node-1.json', 'api-node-2.json'])
      paths.push(
        ...(readFileSync(join(DEPLOY, 'compose', 'consul', file), 'utf8').match(/(?:\/opt\/st-api\/)?dist\/[\w/.-]+\.m?js/g) ?? []),
      );
    assert.ok(paths.length >= 6);
    for (const path of paths) assert.ok(builtByNpmRunBuild(path), path);
  });

  it('when a file is bind-mounted, then it exists in deploy/; named volumes are declared', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source?.startsWith('.')) assert.ok(existsSync(join(DEPLOY, source)), `${name}: ${source}`);
        else assert.ok(compose.volumes?.[source ?? ''] !== undefined, `${name}: volume ${source}`);
      }
    }
  });

  it('when st-api nodes read compose/st-api.json with their environment, then it is a valid configuration pointing at the stack', () => {
    const env = services['api-1']?.environment ?? {};
    const config = parseConfig(JSON.parse(readFileSync(join(DEPLOY, 'compose', 'st-api.json'), 'utf8')), env);
    assert.equal(config.listen.host, '0.0.0.0');
    assert.equal(config.mysql?.host, ip('mariadb'));
    assert.equal(JSON.stringify(config.redis).includes(`${ip('consul-server')}:8600`), true);
    // Graceful stop: compose must wait for the drain.
    const grace = Number((services['api-1']?.stop_grace_period ?? '0s').replace(/s$/, ''));
    assert.ok(grace * 1000 >= config.shutdown.drainMs + config.shutdown.timeoutMs, `stop_grace_period ${grace}s`);
  });

  it('when each Sentinel host reads its hooks configuration, then it is valid and names the stack’s Sentinels and its own Redis', () => {
    for (const n of [1, 2, 3]) {
      const config = hooksConfigSchema.parse(
        JSON.parse(readFileSync(join(DEPLOY, 'compose', 'redis', `sentinel-hooks-${n}.json`), 'utf8')),
      );
      assert.deepEqual(config.sentinels.map((s) => s.address).sort(), ['sentinel-1', 'sentinel-2', 'sentinel-3'].map(ip).sort());
      assert.deepEqual(
        config.instances.map((i) => i.address),
        [ip(`redis-${n}`)],
      );
      assert.ok(
        services[`sentinel-${n}`]?.volumes?.some((v) => v.includes(`sentinel-hooks-${n}.json`)),
        `sentinel-${n} mounts its own file`,
      );
    }
    const sentinelConf = readFileSync(join(DEPLOY, 'compose', 'redis', 'sentinel.conf'), 'utf8');
    assert.ok(sentinelConf.includes(`sentinel monitor mymaster ${ip('redis-1')} 6379 2`));
    for (const script of sentinelConf.match(/\/usr\/local\/lib\/st-api\/[\w-]+/g) ?? [])
      assert.ok(dockerfile.includes(script), `${script} is created in the redis-sentinel stage`);
  });

  it('when a Consul agent registers its st-api node, then the service and its check point at that node and the watch runs `watcher handle`', () => {
    for (const n of [1, 2]) {
      const agent = JSON.parse(readFileSync(join(DEPLOY, 'compose', 'consul', `api-node-${n}.json`), 'utf8')) as {
        services: { address: string; checks: { http: string }[] }[];
        watches: { args: string[] }[];
      };
      assert.equal(agent.services[0]?.address, ip(`api-${n}`));
      assert.equal(agent.services[0]?.checks[0]?.http, `http://${ip(`api-${n}`)}:8080/health/deep`);
      assert.deepEqual(agent.watches[0]?.args.slice(-2), ['/opt/st-api/dist/watcher/main.js', 'handle']);
      assert.equal(services[`consul-api-${n}`]?.environment?.ST_DNS_CONFIG, '/shared/dns-watcher.json');
    }
  });
});
