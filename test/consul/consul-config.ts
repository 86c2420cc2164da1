// What the tests of consul/ share: loading the agent configuration files, the allow-lists of
// documented field names, the translation an agent applies to a config-file service definition,
// and a small evaluator for the ACL policies under consul/acl/ with Consul's documented
// permission table for every HTTP endpoint the programs call.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(import.meta.dirname, '..', '..');
export const CONSUL_DIR = join(REPO, 'consul');
/** Where the runbook installs the build (`npm ci && npm run build` in /opt/st-api). */
export const INSTALL_ROOT = '/opt/st-api/';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: Json | undefined): value is JsonObject {
  return value !== null && value !== undefined && typeof value === 'object' && !Array.isArray(value);
}

/** The value as a string, or an error naming it: a number or an object where a string belongs is a bad file. */
export function str(value: Json | undefined, what = 'value'): string {
  if (typeof value !== 'string') throw new Error(`${what} is not a string: ${JSON.stringify(value)}`);
  return value;
}

export function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

export function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// Documented field names, per block of an agent configuration file (snake_case, as in files).
// Only what these pages list; a typo or an HTTP-API spelling (PascalCase) in a file is an error,
// because the agent refuses unknown keys at start-up and the check would never exist.

/** https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file (top-level keys these files may use). */
export const AGENT_TOP_LEVEL = new Set([
  'service',
  'services',
  'check',
  'checks',
  'watches',
  'dns_config',
  'acl',
  'ports',
  'recursors',
  'domain',
  'alt_domain',
]);

/** https://developer.hashicorp.com/consul/docs/services/configuration/services-configuration-reference */
export const SERVICE_FIELDS = new Set([
  'name',
  'id',
  'tags',
  'address',
  'tagged_addresses',
  'meta',
  'port',
  'socket_path',
  'enable_tag_override',
  'check',
  'checks',
  'kind',
  'proxy',
  'connect',
  'weights',
  'token',
  'namespace',
  'partition',
  'locality',
]);

/** https://developer.hashicorp.com/consul/docs/services/configuration/checks-configuration-reference */
export const CHECK_FIELDS = new Set([
  'name',
  'id',
  'check_id',
  'notes',
  'interval',
  'timeout',
  'ttl',
  'http',
  'header',
  'method',
  'body',
  'disable_redirects',
  'tcp',
  'tcp_use_tls',
  'udp',
  'os_service',
  'grpc',
  'grpc_use_tls',
  'h2ping',
  'h2ping_use_tls',
  'tls_server_name',
  'tls_skip_verify',
  'alias_node',
  'alias_service',
  'docker_container_id',
  'shell',
  'args',
  'success_before_passing',
  'failures_before_warning',
  'failures_before_critical',
  'deregister_critical_service_after',
  'status',
  'output_max_size',
  'service_id',
]);

/**
 * https://developer.hashicorp.com/consul/docs/automate/watch (parameters common to every watch,
 * then those of `type: service`). `handler` is documented but deprecated (it runs through a
 * shell), so it is left out on purpose: these files use `args`.
 */
export const WATCH_FIELDS = new Set([
  'type',
  'datacenter',
  'token',
  'args',
  'handler_type',
  'http_handler_config',
  'service',
  'tag',
  'passingonly',
  'filter',
]);

/** https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/dns (dns_config sub-keys). */
export const DNS_CONFIG_FIELDS = new Set([
  'allow_stale',
  'max_stale',
  'node_ttl',
  'service_ttl',
  'udp_answer_limit',
  'a_record_limit',
  'enable_truncate',
  'only_passing',
  'recursor_strategy',
  'recursor_timeout',
  'disable_compression',
  'soa',
  'use_cache',
  'cache_max_age',
  'prefer_namespace',
  'enable_additional_node_meta_txt',
]);

/** Every field name in `config` that the allow-lists do not know, as `path: key`. */
export function undocumentedFields(config: Json): string[] {
  const problems: string[] = [];
  const check = (value: Json | undefined, allowed: Set<string>, path: string): void => {
    if (!isObject(value)) {
      problems.push(`${path}: not an object`);
      return;
    }
    for (const key of Object.keys(value)) if (!allowed.has(key)) problems.push(`${path}: ${key}`);
  };
  check(config, AGENT_TOP_LEVEL, '(top level)');
  if (!isObject(config)) return problems;
  const services = [...(config['service'] === undefined ? [] : [config['service']]), ...asArray(config['services'])];
  for (const [i, service] of services.entries()) {
    check(service, SERVICE_FIELDS, `service[${i}]`);
    if (!isObject(service)) continue;
    const checks = [...(service['check'] === undefined ? [] : [service['check']]), ...asArray(service['checks'])];
    for (const [j, c] of checks.entries()) check(c, CHECK_FIELDS, `service[${i}].check[${j}]`);
  }
  for (const [i, watch] of asArray(config['watches']).entries()) check(watch, WATCH_FIELDS, `watches[${i}]`);
  if (config['dns_config'] !== undefined) check(config['dns_config'], DNS_CONFIG_FIELDS, 'dns_config');
  return problems;
}

function asArray(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}

// ---------------------------------------------------------------------------------------------
// Config file → HTTP API. The agent loads a file's service block into the same structure the
// register endpoint decodes (https://developer.hashicorp.com/consul/api-docs/agent/service#register-service:
// the endpoint accepts snake_case too); the double speaks the API's PascalCase, so the tests hand
// it what the agent would register. Explicit tables, so an unknown key fails instead of vanishing.

const SERVICE_TO_API: Record<string, string> = {
  name: 'Name',
  id: 'ID',
  tags: 'Tags',
  address: 'Address',
  port: 'Port',
  meta: 'Meta',
  enable_tag_override: 'EnableTagOverride',
  tagged_addresses: 'TaggedAddresses',
  weights: 'Weights',
};
// In a service block a check's `id` is the API's `CheckID` (https://developer.hashicorp.com/consul/api-docs/agent/check).
const CHECK_TO_API: Record<string, string> = {
  id: 'CheckID',
  check_id: 'CheckID',
  name: 'Name',
  notes: 'Notes',
  http: 'HTTP',
  method: 'Method',
  header: 'Header',
  body: 'Body',
  interval: 'Interval',
  timeout: 'Timeout',
  ttl: 'TTL',
  tls_server_name: 'TLSServerName',
  tls_skip_verify: 'TLSSkipVerify',
  success_before_passing: 'SuccessBeforePassing',
  failures_before_warning: 'FailuresBeforeWarning',
  failures_before_critical: 'FailuresBeforeCritical',
  deregister_critical_service_after: 'DeregisterCriticalServiceAfter',
  status: 'Status',
  output_max_size: 'OutputMaxSize',
};

function translate(block: JsonObject, table: Record<string, string>, what: string): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(block)) {
    const apiKey = table[key];
    if (apiKey === undefined) throw new Error(`${what}: no API translation for "${key}"`);
    // Meta and Header keys are user data and keep their spelling; weights' keys are the API's.
    out[apiKey] = key === 'weights' && isObject(value) ? { Passing: value['passing'] ?? 1, Warning: value['warning'] ?? 1 } : value;
  }
  return out;
}

/** The body of PUT /v1/agent/service/register that registers a config file's `service` block. */
export function serviceRegistrationBody(service: Json | undefined): JsonObject {
  if (!isObject(service)) throw new Error('service block is not an object');
  const { check, checks, ...rest } = service;
  const body = translate(rest, SERVICE_TO_API, 'service');
  if (check !== undefined) {
    if (!isObject(check)) throw new Error('service.check is not an object');
    body['Check'] = translate(check, CHECK_TO_API, 'service.check');
  }
  if (checks !== undefined)
    body['Checks'] = asArray(checks).map((c, i) => translate(isObject(c) ? c : {}, CHECK_TO_API, `service.checks[${i}]`));
  return body;
}

// ---------------------------------------------------------------------------------------------
// Installed paths → sources. The files name the build output under INSTALL_ROOT; `npm run build`
// (tsc -p tsconfig.build.json, rootDir ".", outDir "dist") turns <dir>/<file>.ts into dist/<dir>/<file>.js.

export function sourceOfInstalled(path: string): string {
  if (!path.startsWith(`${INSTALL_ROOT}dist/`) || !path.endsWith('.js'))
    throw new Error(`${path} is not a build output under ${INSTALL_ROOT}dist/`);
  return path.slice(`${INSTALL_ROOT}dist/`.length).replace(/\.js$/, '.ts');
}

export function sourceExists(relative: string): boolean {
  return existsSync(join(REPO, relative));
}

// ---------------------------------------------------------------------------------------------
// ACL policies. The files use one HCL form only — `<resource> "<name>" { policy = "<p>" }` — which
// is also what `consul acl policy create -rules @file` accepts; the parser refuses anything else,
// so what the evaluator reads is exactly what Consul would enforce.
// Rules reference: https://developer.hashicorp.com/consul/docs/security/acl/acl-rules

export type Resource = 'service' | 'node' | 'key' | 'session' | 'agent' | 'query' | 'event';
export type Access = 'read' | 'write' | 'list';

export interface Rule {
  readonly resource: Resource;
  readonly prefix: boolean;
  readonly name: string;
  readonly policy: 'read' | 'write' | 'list' | 'deny';
  /** e.g. `key_prefix "st-api/dns/"`, for messages. */
  readonly text: string;
}

const RULE = /^\s*(service|node|key|session|agent|query|event)(_prefix)?\s+"([^"\\]*)"\s*\{\s*policy\s*=\s*"(read|write|list|deny)"\s*\}/;

export function parsePolicy(text: string, file = 'policy'): Rule[] {
  let rest = text.replace(/^\s*(#|\/\/).*$/gm, '');
  const rules: Rule[] = [];
  for (let guard = 0; rest.trim() !== '' && guard < 1000; guard++) {
    const match = RULE.exec(rest);
    if (match === null) throw new Error(`${file}: not in the supported rule form near ${JSON.stringify(rest.trim().slice(0, 60))}`);
    const [whole, resource, prefix, name, policy] = match as unknown as [string, Resource, string | undefined, string, Rule['policy']];
    const rule: Rule = { resource, prefix: prefix !== undefined, name, policy, text: `${resource}${prefix ?? ''} "${name}"` };
    if (rules.some((r) => r.text === rule.text)) throw new Error(`${file}: ${rule.text} appears twice`);
    rules.push(rule);
    rest = rest.slice(whole.length);
  }
  return rules;
}

/**
 * The rule Consul applies to (resource, name): an exact rule wins over prefix rules, and the
 * longest matching prefix wins among those; no rule means the default policy (deny here).
 */
export function governingRule(rules: readonly Rule[], resource: Resource, name: string): Rule | undefined {
  const exact = rules.find((r) => r.resource === resource && !r.prefix && r.name === name);
  if (exact !== undefined) return exact;
  return rules
    .filter((r) => r.resource === resource && r.prefix && name.startsWith(r.name))
    .sort((a, b) => b.name.length - a.name.length)[0];
}

/** write implies read and list; read implies nothing more; list (keys only) allows listing. */
export function grants(policy: Rule['policy'], access: Access): boolean {
  if (policy === 'write') return true;
  if (policy === 'read') return access === 'read';
  if (policy === 'list') return access === 'list';
  return false;
}

export interface Requirement {
  readonly resource: Resource;
  readonly name: string;
  readonly access: Access;
  /** Where Consul documents it. */
  readonly source: string;
}

export interface Verdict {
  /** Requirements no rule allows, with the call that needed them. */
  readonly denied: string[];
  /** Rules that governed no requirement: privilege nothing observed needs. */
  readonly unused: string[];
}

export function evaluate(rules: readonly Rule[], needs: readonly { call: string; requirement: Requirement }[]): Verdict {
  const used = new Set<string>();
  const denied: string[] = [];
  for (const { call, requirement } of needs) {
    const rule = governingRule(rules, requirement.resource, requirement.name);
    if (rule !== undefined) used.add(rule.text);
    if (rule === undefined || !grants(rule.policy, requirement.access)) {
      denied.push(
        `${call} needs ${requirement.resource}:${requirement.access} on "${requirement.name}" (${requirement.source}); ${rule === undefined ? 'no rule matches' : `${rule.text} is ${rule.policy}`}`,
      );
    }
  }
  return { denied: [...new Set(denied)], unused: rules.filter((r) => !used.has(r.text)).map((r) => r.text) };
}

// ---------------------------------------------------------------------------------------------
// The permission each HTTP call needs, as Consul documents it ("ACL Required" in each endpoint's
// table) and, where the table is coarse, as the agent's code enforces it.

const DOC = {
  health:
    'https://developer.hashicorp.com/consul/api-docs/health#list-service-instances-for-service (node:read,service:read; results filtered by both)',
  agentService: 'https://developer.hashicorp.com/consul/api-docs/agent/service#get-service-configuration (service:read)',
  agentChecks:
    'https://developer.hashicorp.com/consul/api-docs/agent/check#list-checks (node:read,service:read: a filter; agent/acl.go filterChecksWithAuthorizer needs service:read for service checks)',
  register:
    'https://developer.hashicorp.com/consul/api-docs/agent/service#register-service (service:write; agent/acl.go vetServiceRegisterWithAuthorizer)',
  checkUpdate:
    'https://developer.hashicorp.com/consul/api-docs/agent/check#ttl-check-update (node:write,service:write; agent/acl.go vetCheckUpdateWithAuthorizer: service:write for a service check, node:write for a node check)',
  kvRead: 'https://developer.hashicorp.com/consul/api-docs/kv#read-key (key:read; recurse filters every key under the prefix)',
  kvWrite:
    'https://developer.hashicorp.com/consul/api-docs/kv#create-update-key (key:write; cas, acquire and release too: agent/consul/kvs_endpoint.go kvsPreApply)',
  kvDelete: 'https://developer.hashicorp.com/consul/api-docs/kv#delete-key (key:write; recurse needs write on the whole prefix)',
  sessionCreate:
    "https://developer.hashicorp.com/consul/api-docs/session#create-session (session:write on the session's Node, default the agent's)",
  sessionDestroy: "https://developer.hashicorp.com/consul/api-docs/session#delete-session (session:write on the session's node)",
  dns: 'https://developer.hashicorp.com/consul/docs/secure/acl/token/dns (service:read for service lookups, node:read for nodes)',
} as const;

/** What the evaluator needs to know about the world to name the resources a call touches. */
export interface World {
  /** Nodes that run an instance of the service. */
  nodesOf(service: string): readonly string[];
  /** Service name of a service id on an agent (node). */
  serviceOfId(agent: string, id: string): string | undefined;
  /** The service a check belongs to ('' for a node check). */
  serviceOfCheck(agent: string, checkId: string): string | undefined;
  /** Service names registered on an agent through the API by the program. */
  servicesOn(agent: string): readonly string[];
}

export interface Call {
  readonly agent: string;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
}

export class UnmappedCallError extends Error {
  override name = 'UnmappedCallError';
}

export function requirementsOf(call: Call, world: World): Requirement[] {
  const { method, path, query } = call;
  const after = (prefix: string): string | null => (path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : null);
  let rest: string | null;
  if (method === 'GET' && (rest = after('/v1/health/service/')) !== null) {
    return [
      { resource: 'service', name: rest, access: 'read', source: DOC.health },
      ...world.nodesOf(rest).map((node) => ({ resource: 'node' as const, name: node, access: 'read' as const, source: DOC.health })),
    ];
  }
  if (method === 'GET' && path === '/v1/agent/checks') {
    // A filtered list: the caller sees the checks it may read. The programs read only the checks
    // of the services they register on that agent.
    return world
      .servicesOn(call.agent)
      .map((name) => ({ resource: 'service' as const, name, access: 'read' as const, source: DOC.agentChecks }));
  }
  if (method === 'PUT' && path === '/v1/agent/service/register') {
    return world
      .servicesOn(call.agent)
      .map((name) => ({ resource: 'service' as const, name, access: 'write' as const, source: DOC.register }));
  }
  if (method === 'PUT' && (rest = after('/v1/agent/check/update/')) !== null) {
    const service = world.serviceOfCheck(call.agent, rest);
    if (service === undefined) throw new UnmappedCallError(`check ${rest} is unknown on ${call.agent}`);
    return [
      service === ''
        ? { resource: 'node', name: call.agent, access: 'write', source: DOC.checkUpdate }
        : { resource: 'service', name: service, access: 'write', source: DOC.checkUpdate },
    ];
  }
  if (method === 'GET' && (rest = after('/v1/agent/service/')) !== null && !rest.includes('/')) {
    const service = world.serviceOfId(call.agent, rest);
    if (service === undefined) throw new UnmappedCallError(`service id ${rest} is unknown on ${call.agent}`);
    return [{ resource: 'service', name: service, access: 'read', source: DOC.agentService }];
  }
  if ((rest = after('/v1/kv/')) !== null) {
    if (method === 'GET') return [{ resource: 'key', name: rest, access: 'read', source: DOC.kvRead }];
    if (method === 'PUT') return [{ resource: 'key', name: rest, access: 'write', source: DOC.kvWrite }];
    if (method === 'DELETE') return [{ resource: 'key', name: rest, access: 'write', source: DOC.kvDelete }];
  }
  if (method === 'PUT' && path === '/v1/session/create')
    return [{ resource: 'session', name: call.agent, access: 'write', source: DOC.sessionCreate }];
  if (method === 'PUT' && after('/v1/session/destroy/') !== null)
    return [{ resource: 'session', name: call.agent, access: 'write', source: DOC.sessionDestroy }];
  void query;
  throw new UnmappedCallError(`${method} ${path}: no documented permission in the table; add the endpoint with its doc`);
}

/** What the agent needs to answer one DNS question for a service (the DNS token's permissions). */
export function dnsRequirements(service: string, nodes: readonly string[]): Requirement[] {
  return [
    { resource: 'service', name: service, access: 'read', source: DOC.dns },
    ...nodes.map((node) => ({ resource: 'node' as const, name: node, access: 'read' as const, source: DOC.dns })),
  ];
}

/** service:write on the service's name, as for the register endpoint (agent/acl.go vetServiceRegisterWithAuthorizer). */
export function registrationRequirements(serviceName: string): Requirement[] {
  return [{ resource: 'service', name: serviceName, access: 'write', source: DOC.register }];
}

export function loadPolicy(name: string): Rule[] {
  const file = join(CONSUL_DIR, 'acl', name);
  return parsePolicy(readFileSync(file, 'utf8'), file);
}

/** Builds a World from the double's own HTTP API (no ACLs there), read after the programs ran. */
export async function worldFromDouble(
  agents: ReadonlyMap<string, string>,
  httpAddr: string,
  ignoreServices: readonly string[] = ['consul'],
): Promise<World> {
  const get = async <T>(url: string): Promise<T> => (await (await fetch(url, { signal: AbortSignal.timeout(5000) })).json()) as T;
  const nodesByService = new Map<string, string[]>();
  const services = new Map<string, Map<string, string>>();
  const checks = new Map<string, Map<string, string>>();
  const catalog = await get<Record<string, string[]>>(`${httpAddr}/v1/catalog/services`);
  for (const name of Object.keys(catalog)) {
    const entries = await get<{ Node: string }[]>(`${httpAddr}/v1/catalog/service/${encodeURIComponent(name)}`);
    nodesByService.set(name, [...new Set(entries.map((e) => e.Node))].sort());
  }
  for (const [node, addr] of agents) {
    const own = await get<Record<string, { Service: string }>>(`${addr}/v1/agent/services`);
    services.set(node, new Map(Object.entries(own).map(([id, s]) => [id, s.Service])));
    const ownChecks = await get<Record<string, { ServiceName: string }>>(`${addr}/v1/agent/checks`);
    checks.set(node, new Map(Object.entries(ownChecks).map(([id, c]) => [id, c.ServiceName])));
  }
  return {
    nodesOf: (service) => nodesByService.get(service) ?? [],
    serviceOfId: (agent, id) => services.get(agent)?.get(id),
    serviceOfCheck: (agent, checkId) => checks.get(agent)?.get(checkId),
    servicesOn: (agent) => [...new Set(services.get(agent)?.values() ?? [])].filter((s) => !ignoreServices.includes(s)).sort(),
  };
}
