// What the sandbox shows: one snapshot of the system read the way on-call reads it (Consul's
// health API, the Route53 double's record sets, each Sentinel, Consul DNS, the watcher's KV), drawn
// as a screen on a terminal or reduced to one status line that is printed when it changes.
import { Resolver } from 'node:dns/promises';
import { stripVTControlCharacters } from 'node:util';
import { errorMessage } from '../processes.ts';
import { REDIS_MASTER_NAME } from '../chaos/redis.ts';
import { KV_PREFIX, RECORD_NAME, SERVICE, type ChaosSystem } from '../chaos/system.ts';

const READ_TIMEOUT_MS = 2000;

export interface NodeView {
  readonly index: number;
  readonly name: string;
  readonly url: string;
  /** Null while the process is not running. */
  readonly pid: number | null;
  /** Consul's aggregated health of the instance (node check included), or 'unregistered'. */
  readonly health: string;
  /** The st-api:deep-health check's output, on one line. */
  readonly checkOutput: string;
  readonly inDns: boolean;
  readonly excluded: boolean;
}

export interface RecordView {
  readonly setIdentifier: string;
  readonly type: string;
  readonly values: readonly string[];
  readonly ttl: number | undefined;
  /** "multivalue", "weight N", or '' for a simple record. */
  readonly routing: string;
}

export interface RedisView {
  readonly key: string;
  readonly pid: number | null;
  /** The tag sentinel-hooks gave its Consul registration (master/replica), or '-' when unregistered. */
  readonly tag: string;
  readonly check: string;
  readonly checkOutput: string;
}

export interface WatcherStatus {
  readonly lastRun?: string;
  readonly command?: string;
  readonly result?: string;
  readonly message?: string;
  readonly floorEngaged?: boolean;
  readonly keptByFloor?: readonly string[];
}

export interface Snapshot {
  readonly at: number;
  readonly nodes: readonly NodeView[];
  readonly records: readonly RecordView[];
  readonly redis: readonly RedisView[];
  /** Each Sentinel's answer to get-master-addr-by-name (null: no answer). */
  readonly sentinelMasters: readonly (string | null)[];
  /** What Consul DNS answers for master.redis.service.consul ("ip:port" from SRV + A), or an error text. */
  readonly consulDnsMaster: string;
  readonly excluded: readonly string[];
  readonly watcher: WatcherStatus | null;
  /** Reads that failed this round, by source. */
  readonly errors: readonly string[];
}

interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { ID: string; Address: string; Port: number; Tags: string[] | null };
  Checks: { CheckID: string; Status: string; Output: string; ServiceID: string }[];
}

function aggregate(checks: readonly { Status: string }[]): string {
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

async function getJson<T>(url: string): Promise<T | null> {
  const response = await fetch(url, { signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

export class SnapshotReader {
  readonly #system: ChaosSystem;
  readonly #resolver: Resolver;

  constructor(system: ChaosSystem) {
    this.#system = system;
    this.#resolver = new Resolver({ timeout: 500, tries: 1 });
    this.#resolver.setServers([`127.0.0.1:${system.consul.dnsPort}`]);
  }

  /** One read of everything; each source is bounded and a failing one is reported, never thrown. */
  async read(): Promise<Snapshot> {
    const system = this.#system;
    const consul = system.consul.httpAddr;
    const errors: string[] = [];
    const attempt = async <T>(what: string, read: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await read();
      } catch (error) {
        errors.push(`${what}: ${errorMessage(error)}`);
        return fallback;
      }
    };
    const [api, redis, excludedKeys, statusText, sentinelMasters, consulDnsMaster] = await Promise.all([
      attempt('Consul health st-api', () => getJson<HealthEntry[]>(`${consul}/v1/health/service/${SERVICE}`), null),
      attempt('Consul health redis', () => getJson<HealthEntry[]>(`${consul}/v1/health/service/redis`), null),
      attempt('Consul KV excluded', () => getJson<string[]>(`${consul}/v1/kv/${KV_PREFIX}/excluded/?keys`), null),
      attempt('Consul KV status', () => system.kvGet(`${KV_PREFIX}/status`), undefined),
      attempt('Sentinels', () => system.redis.cluster.masterAddrs(), [] as (string | null)[]),
      this.#dnsMaster(),
    ]);
    let watcher: WatcherStatus | null = null;
    try {
      watcher = statusText === undefined ? null : (JSON.parse(statusText) as WatcherStatus);
    } catch {
      errors.push(`${KV_PREFIX}/status is not JSON`);
    }
    const excluded = (excludedKeys ?? []).map((key) => key.slice(`${KV_PREFIX}/excluded/`.length)).filter((node) => node !== '');
    // Read DNS last: a node seen critical and then still published really was both at once.
    const sets = system.route53.records(system.zoneId).filter((set) => set.Name === `${RECORD_NAME}.`);
    const records: RecordView[] = sets.map((set) => ({
      setIdentifier: set.SetIdentifier ?? '',
      type: set.Type,
      values: (set.ResourceRecords ?? []).map((r) => r.Value),
      ttl: set.TTL,
      routing: set.MultiValueAnswer === true ? 'multivalue' : set.Weight === undefined ? '' : `weight ${set.Weight}`,
    }));
    const published = system.published();
    const nodes: NodeView[] = system.apiNodes.map((node, index) => {
      const entry = (api ?? []).find((e) => e.Node.Node === node.name);
      const check = entry?.Checks.find((c) => c.ServiceID !== '' && c.ServiceID === entry.Service.ID);
      const nodeCheck = entry?.Checks.find((c) => c.CheckID === 'serfHealth' && c.Status !== 'passing');
      return {
        index: index + 1,
        name: node.name,
        url: node.baseUrl,
        pid: node.server.running ? node.server.pid : null,
        health: entry === undefined ? 'unregistered' : aggregate(entry.Checks),
        checkOutput: oneLine(nodeCheck?.Output ?? check?.Output ?? '', 200),
        inDns: published.has(node.name),
        excluded: excluded.includes(node.name),
      };
    });
    const redisViews: RedisView[] = system.redis.cluster.redis.map((instance) => {
      const entry = (redis ?? []).find((e) => `${e.Service.Address}:${e.Service.Port}` === instance.key);
      const check = entry?.Checks.find((c) => c.ServiceID === entry.Service.ID);
      return {
        key: instance.key,
        pid: instance.running ? instance.pid : null,
        tag: entry?.Service.Tags?.join(',') || '-',
        check: entry === undefined ? '-' : aggregate(entry.Checks),
        checkOutput: oneLine(check?.Output ?? '', 120),
      };
    });
    return {
      at: Date.now(),
      nodes,
      records,
      redis: redisViews,
      sentinelMasters,
      consulDnsMaster,
      excluded,
      watcher,
      errors,
    };
  }

  async #dnsMaster(): Promise<string> {
    try {
      const [srv] = await this.#resolver.resolveSrv(REDIS_MASTER_NAME);
      const [address] = await this.#resolver.resolve4(REDIS_MASTER_NAME);
      return address === undefined ? 'no answer' : `${address}:${srv?.port ?? '?'}`;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return code === 'ENOTFOUND' ? 'NXDOMAIN' : `no answer (${typeof code === 'string' ? code : errorMessage(error)})`;
    }
  }
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '-' : items.join(',');
}

/** Nodes the record set answers, by the SetIdentifier the watcher writes (`st-api/<node>/…`). */
function dnsNodes(snapshot: Snapshot): string[] {
  return snapshot.nodes.filter((n) => n.inDns).map((n) => n.name);
}

function agreedSentinelMaster(snapshot: Snapshot): string {
  const answers = snapshot.sentinelMasters;
  if (answers.length === 0) return 'no answer';
  const first = answers[0] ?? null;
  return answers.every((a) => a === first) ? (first ?? 'no answer') : `split(${answers.map((a) => a ?? '?').join('|')})`;
}

function taggedMasters(snapshot: Snapshot): string[] {
  return snapshot.redis.filter((r) => r.tag.split(',').includes('master')).map((r) => `${r.key}(${r.check})`);
}

/**
 * The status line printed when stdout is not a terminal: everything a change would show, and no
 * clock, so that two equal lines mean nothing changed.
 */
export function statusLine(snapshot: Snapshot): string {
  const health = snapshot.nodes.map((n) => `${n.name}:${n.pid === null ? 'down/' : ''}${n.health}`);
  const floor = snapshot.watcher?.floorEngaged === true ? `on(kept ${list(snapshot.watcher.keptByFloor ?? [])})` : 'off';
  return [
    `dns=${list(dnsNodes(snapshot))}`,
    `addresses=${list(snapshot.records.flatMap((r) => r.values))}`,
    `health=${health.join(',')}`,
    `excluded=${list(snapshot.excluded)}`,
    `floor=${floor}`,
    `redis-master sentinel=${agreedSentinelMaster(snapshot)} consul-tag=${list(taggedMasters(snapshot))} consul-dns=${snapshot.consulDnsMaster}`,
    `redis-down=${list(snapshot.redis.filter((r) => r.pid === null).map((r) => r.key))}`,
  ].join(' ');
}

const ESC = '\u001b[';
const BOLD = (s: string): string => `${ESC}1m${s}${ESC}0m`;
const COLOR: Record<string, string> = { passing: '32', warning: '33', critical: '31' };
const paint = (status: string, text: string = status): string =>
  COLOR[status] === undefined ? text : `${ESC}${COLOR[status]}m${text}${ESC}0m`;

function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return '';
  const ms = now - Date.parse(iso);
  return Number.isFinite(ms) ? `${Math.max(0, Math.round(ms / 1000))} s ago` : '';
}

function table(rows: readonly (readonly string[])[], visible: (s: string) => number): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell))))
      .join('  ')
      .trimEnd(),
  );
}

const visibleLength = (s: string): number => stripVTControlCharacters(s).length;
/** A colour code at the start of the text (built from its char code: the linter refuses control characters in a regex literal). */
const LEADING_SGR = new RegExp(`^${String.fromCharCode(27)}\\[[0-9;]*m`);

/** The terminal screen: one full frame, cut to the terminal's width. */
export function renderScreen(
  snapshot: Snapshot,
  options: { columns: number; startedAt: number; prompt: string; messages: readonly string[] },
): string {
  const now = snapshot.at;
  const lines: string[] = [];
  lines.push(
    `${BOLD('st-api sandbox')}  up ${Math.round((now - options.startedAt) / 1000)} s  ${new Date(now).toISOString().slice(11, 19)} UTC  (Ctrl-C stops everything)`,
  );
  lines.push('');
  lines.push(BOLD('st-api nodes') + '  (Consul health of st-api; the check is GET /health/deep)');
  lines.push(
    ...table(
      [
        ['#', 'node', 'url', 'pid', 'consul', 'in DNS', 'check output'],
        ...snapshot.nodes.map((n) => [
          String(n.index),
          n.name,
          n.url,
          n.pid === null ? 'DOWN' : String(n.pid),
          paint(n.health),
          n.excluded ? `${n.inDns ? 'yes' : 'no'} (excluded)` : n.inDns ? 'yes' : 'no',
          oneLine(n.checkOutput, Math.max(20, options.columns - 80)),
        ]),
      ],
      visibleLength,
    ).map((l) => `  ${l}`),
  );
  lines.push('');
  lines.push(BOLD(`Route53 double: what ${RECORD_NAME} answers`) + (snapshot.records.length === 0 ? '  (no record: nothing answers)' : ''));
  lines.push(
    ...table(
      [
        ['set identifier', 'type', 'ttl', 'routing', 'values'],
        ...snapshot.records.map((r) => [
          r.setIdentifier || '(none)',
          r.type,
          String(r.ttl ?? '-'),
          r.routing || 'simple',
          r.values.join(' '),
        ]),
      ],
      visibleLength,
    ).map((l) => `  ${l}`),
  );
  const w = snapshot.watcher;
  lines.push('');
  lines.push(BOLD(`watcher (Consul KV ${KV_PREFIX}/)`));
  lines.push(
    `  last run: ${w?.command ?? '-'} ${w?.result ?? ''} ${ago(w?.lastRun, now)}  floor: ${w?.floorEngaged === true ? paint('warning', `ENGAGED, kept ${list(w.keptByFloor ?? [])}`) : 'off'}  excluded: ${list(snapshot.excluded)}`,
  );
  if (w?.message !== undefined && w.message !== '') lines.push(`  ${oneLine(w.message, options.columns - 4)}`);
  lines.push('');
  lines.push(
    BOLD('Redis master') +
      `  Sentinels say: ${agreedSentinelMaster(snapshot)}   Consul DNS ${REDIS_MASTER_NAME}: ${snapshot.consulDnsMaster}`,
  );
  lines.push(
    ...table(
      [
        ['instance', 'pid', 'consul tag', 'check', 'check output'],
        ...snapshot.redis.map((r) => [
          r.key,
          r.pid === null ? 'DOWN' : String(r.pid),
          r.tag,
          paint(r.check),
          oneLine(r.checkOutput, Math.max(20, options.columns - 60)),
        ]),
      ],
      visibleLength,
    ).map((l) => `  ${l}`),
  );
  if (snapshot.errors.length > 0) {
    lines.push('');
    for (const error of snapshot.errors) lines.push(paint('critical', `  read failed: ${error}`));
  }
  lines.push('');
  lines.push('keys: k1..k3 kill st-api node (SIGKILL), s1..s3 start it again, r restart dead Redis, then Enter; q or Ctrl-C quits');
  for (const message of options.messages.slice(-3)) lines.push(`  ${message}`);
  lines.push(`> ${options.prompt}`);
  return lines.map((l) => (visibleLength(l) > options.columns ? cutVisible(l, options.columns) : l)).join('\n');
}

/** Cuts a line to `columns` visible characters, keeping colour codes and resetting at the end. */
function cutVisible(line: string, columns: number): string {
  let out = '';
  let shown = 0;
  for (let i = 0; i < line.length && shown < columns; i++) {
    const match = LEADING_SGR.exec(line.slice(i));
    if (match !== null) {
      out += match[0];
      i += match[0].length - 1;
      continue;
    }
    out += line[i];
    shown++;
  }
  return `${out}${ESC}0m`;
}
