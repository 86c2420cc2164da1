// consul/ is a contract with the Consul agent, which refuses unknown keys at start-up and runs
// exactly the paths it is given: every file must parse, use only documented field names, say what
// the architecture says, and name programs the build really produces.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { decide } from '../../sentinel-hooks/decide.ts';
import {
  CONSUL_DIR,
  filesUnder,
  INSTALL_ROOT,
  isObject,
  loadPolicy,
  readJson,
  REPO,
  serviceRegistrationBody,
  sourceExists,
  sourceOfInstalled,
  str,
  undocumentedFields,
  type Json,
  type JsonObject,
} from './consul-config.ts';

const jsonFiles = filesUnder(CONSUL_DIR, '.json');
const hclFiles = filesUnder(CONSUL_DIR, '.hcl');

function object(value: Json | undefined, what: string): JsonObject {
  assert.ok(isObject(value), `${what} is an object`);
  return value;
}

const serviceFile = object(readJson(join(CONSUL_DIR, 'agent', 'st-api-service.json')), 'st-api-service.json');
const service = object(serviceFile['service'], 'service');
const check = object(service['check'], 'service.check');
const watchFile = object(readJson(join(CONSUL_DIR, 'agent', 'st-api-watch.json')), 'st-api-watch.json');
const dnsFile = object(readJson(join(CONSUL_DIR, 'agent', 'dns.json')), 'dns.json');

/** "5s", "500ms", "1m" → ms (Go duration subset the files use). */
function ms(value: Json | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(str(value, 'duration'));
  assert.ok(match !== null, `${str(value)} is a duration`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

describe('consul/ files', () => {
  it('when the folder is listed, then it holds the agent files, the ACL policies and a README', () => {
    assert.deepEqual(
      jsonFiles.map((f) => f.slice(CONSUL_DIR.length + 1)),
      ['agent/dns.json', 'agent/st-api-service.json', 'agent/st-api-watch.json', 'reference/redis-service.json'],
    );
    assert.deepEqual(
      hclFiles.map((f) => basename(f)),
      ['api-dns.hcl', 'sentinel-hooks.hcl', 'st-api-registration.hcl', 'st-api-watch.hcl', 'watcher.hcl'],
    );
    assert.ok(sourceExists('consul/README.md'));
  });

  for (const file of jsonFiles) {
    it(`when ${file.slice(CONSUL_DIR.length + 1)} is read, then it is JSON with only documented field names`, () => {
      const config = readJson(file);
      assert.deepEqual(undocumentedFields(config), []);
    });
  }

  for (const file of hclFiles) {
    it(`when ${basename(file)} is parsed, then every rule is in the supported form and names a known resource`, () => {
      const rules = loadPolicy(basename(file));
      assert.ok(rules.length > 0);
      // Least privilege has no use for these; a policy that grants them needs a reason in review.
      for (const rule of rules)
        assert.ok(
          !['agent', 'query', 'event'].includes(rule.resource) && rule.policy !== 'list',
          `${rule.text} is not needed by any program`,
        );
    });
  }
});

describe('the st-api service definition', () => {
  it('when the service block is read, then it is st-api on the port st-api listens on by default', () => {
    assert.equal(service['name'], 'st-api');
    assert.equal(service['id'], 'st-api');
    // No address: DNS and the watcher use the node address (README "DNS failover").
    assert.equal(service['address'], undefined);
    const defaultPort = /listen: z[\s\S]*?\.default\(\{ host: '0\.0\.0\.0', port: (\d+) \}\)/.exec(
      readFileSync(join(REPO, 'api', 'config.ts'), 'utf8'),
    )?.[1];
    assert.equal(service['port'], Number(defaultPort));
  });

  it('when the check is read, then it is an HTTPS GET of /health/deep on loopback, verified under the public name, with the chosen timing', () => {
    const url = new URL(str(check['http'], 'check.http'));
    // st-api's public port serves HTTPS (listen.tls); its certificate names the public name, not
    // 127.0.0.1, so the agent verifies it under tls_server_name, and never skips verification.
    assert.equal(url.protocol, 'https:');
    assert.equal(url.hostname, '127.0.0.1');
    assert.match(str(check['tls_server_name'], 'check.tls_server_name'), /^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
    assert.equal(check['tls_skip_verify'], false);
    assert.equal(Number(url.port), service['port']);
    assert.equal(url.pathname, '/health/deep');
    assert.equal(check['method'], 'GET');
    assert.equal(ms(check['interval']), 5000);
    assert.equal(ms(check['timeout']), 2000);
    assert.equal(check['failures_before_critical'], 2);
    assert.equal(check['success_before_passing'], 2);
  });

  it('when the timing is compared with st-api, then the whole deep-health answer fits well inside the timeout', () => {
    // /health/deep runs its probes in parallel, each bounded by health.probeTimeoutMs (default 500).
    const probeTimeout = /probeTimeoutMs: millis\((\d+)\)/.exec(readFileSync(join(REPO, 'api', 'config.ts'), 'utf8'))?.[1];
    assert.ok(
      Number(probeTimeout) * 2 <= ms(check['timeout']),
      `probe timeout ${probeTimeout} ms leaves room inside ${str(check['timeout'])}`,
    );
    assert.ok(ms(check['timeout']) < ms(check['interval']), 'a check never overlaps the next one');
  });

  it('when the service is critical for long, then Consul does not deregister it', () => {
    // A config-file service that the reaper removes comes back only on an agent reload: a node
    // whose st-api recovers would stay out of Consul (and DNS) silently.
    assert.equal(check['deregister_critical_service_after'], undefined);
  });

  it('when the definition is translated for the HTTP API, then every field has its API name', () => {
    assert.deepEqual(serviceRegistrationBody(service), {
      Name: 'st-api',
      ID: 'st-api',
      Port: 8080,
      Meta: { component: 'playback-url-api' },
      Check: {
        CheckID: 'st-api:deep-health',
        Name: 'st-api deep health',
        Notes: check['notes'] ?? null,
        HTTP: 'https://127.0.0.1:8080/health/deep',
        TLSServerName: 'play.example.com',
        TLSSkipVerify: false,
        Method: 'GET',
        Interval: '5s',
        Timeout: '2s',
        SuccessBeforePassing: 2,
        FailuresBeforeCritical: 2,
      },
    });
    assert.throws(() => serviceRegistrationBody({ name: 'x', Check: {} }), /no API translation for "Check"/);
  });
});

describe('the st-api watch', () => {
  const watches = watchFile['watches'];
  assert.ok(Array.isArray(watches));
  const watch = object(watches[0], 'watches[0]');

  it('when the watch is read, then it is one service watch on st-api with every instance (no passingonly, no tag)', () => {
    assert.equal(watches.length, 1);
    assert.equal(watch['type'], 'service');
    assert.equal(watch['service'], 'st-api');
    assert.equal(watch['passingonly'], undefined, 'the watcher applies the floor, so it needs the failing instances too');
    assert.equal(watch['tag'], undefined);
    assert.equal(watch['token'], undefined, 'no secret in a config file; see consul/acl/st-api-watch.hcl');
  });

  it('when the handler is read, then it runs `watcher handle` by absolute paths, without a shell', () => {
    const args = watch['args'];
    assert.ok(Array.isArray(args) && args.every((a) => typeof a === 'string'));
    const [interpreter, script, ...rest] = args.map((a) => str(a));
    assert.equal(interpreter, '/usr/bin/node');
    assert.ok(!['sh', 'bash', '/bin/sh', '/bin/bash'].includes(interpreter ?? ''));
    assert.deepEqual(rest, ['handle']);
    assert.equal(script, `${INSTALL_ROOT}dist/watcher/main.js`);
  });

  it('when the handler path is mapped back to the sources, then the build produces it from a file that exists', () => {
    const args = watch['args'];
    assert.ok(Array.isArray(args));
    const script = str(args[1], 'args[1]');
    const source = sourceOfInstalled(script);
    assert.equal(source, 'watcher/main.ts');
    assert.ok(sourceExists(source), `${source} exists`);
    const pkg = readJson(join(REPO, 'package.json')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts['build'] ?? '', /tsc -p tsconfig\.build\.json/);
    const build = readJson(join(REPO, 'tsconfig.build.json')) as {
      compilerOptions: { outDir: string; rootDir: string };
      include: string[];
    };
    assert.equal(build.compilerOptions.outDir, 'dist');
    assert.equal(build.compilerOptions.rootDir, '.');
    assert.ok(build.include.includes(source.split('/')[0] ?? ''), `tsconfig.build.json compiles ${source}`);
    // `handle` is a command of that program.
    assert.match(readFileSync(join(REPO, 'watcher', 'cli.ts'), 'utf8'), /case 'handle':/);
  });
});

describe('the DNS settings', () => {
  const dns = object(dnsFile['dns_config'], 'dns_config');

  it('when only_passing is read, then warning instances stay in DNS (a master without a Sentinel majority keeps answering)', () => {
    // sentinel-hooks/decide.ts keeps an unconfirmed master tagged with a *warning* check;
    // only_passing would make master.redis.service.consul vanish exactly then.
    assert.equal(dns['only_passing'], false);
    const unconfirmedMaster = decide('10.0.0.1:6379', { kind: 'master' }, { master: null, agreement: '1/3' }, 'master');
    assert.deepEqual([unconfirmedMaster.tag, unconfirmedMaster.status], ['master', 'warning']);
  });

  it('when the TTLs are read, then no answer may be cached (a failover is seen at the next lookup)', () => {
    assert.deepEqual(dns['service_ttl'], { '*': '0s' });
    assert.equal(dns['node_ttl'], '0s');
  });
});

describe('the redis reference registration', () => {
  it('when it is translated, then it has the shape sentinel-hooks registers (documentation only, never installed)', () => {
    const redis = object(object(readJson(join(CONSUL_DIR, 'reference', 'redis-service.json')), 'redis-service.json')['service'], 'service');
    const body = serviceRegistrationBody(redis);
    assert.equal(body['Name'], 'redis');
    const id = str(body['ID'], 'ID');
    assert.match(id, /^redis-[\d.]+-\d+$/);
    const redisCheck = object(body['Check'], 'Check');
    assert.equal(redisCheck['CheckID'], `${id}:role`);
    assert.equal(redisCheck['TTL'], '15s');
    // The same words the hooks use, so the reference cannot drift from sync.ts unnoticed.
    const sync = readFileSync(join(REPO, 'sentinel-hooks', 'sync.ts'), 'utf8');
    assert.ok(sync.includes(`Name: '${str(redisCheck['Name'])}'`));
    assert.ok(sync.includes(str(redisCheck['Notes'])));
  });
});
