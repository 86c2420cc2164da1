// The Route53 double: an HTTP server on 127.0.0.1 that speaks Route53's
// REST-XML protocol well enough for the real @aws-sdk/client-route-53, with
// AWS's documented semantics (see model.ts), a per-account rate limit,
// PENDING→INSYNC changes, fault injection and a call log. Test-only controls
// live under /_double/, a path AWS never uses.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ResourceRecordSet } from '@aws-sdk/client-route-53';
import {
  LIMITS,
  Route53Error,
  applyChangeBatch,
  awsId,
  checkChangeShape,
  checkLimits,
  checkSetIdentifierLength,
  compareRecordKeys,
  invalidChangeBatch,
  invalidInput,
  newZone,
  normaliseName,
  recordKey,
  sortedRecords,
  type Change,
  type ChangeInfo,
  type RecordSet,
  type Zone,
} from './model.ts';
import { AccountThrottle, DOCUMENTED_LIMITS, type BucketName, type ThrottleLimits } from './throttle.ts';
import { XmlSyntaxError, child, children, parseXml, route53Document, type XmlElement, type XmlNode } from './xml.ts';

export type { RecordSet } from './model.ts';
export { DOCUMENTED_LIMITS, LEGACY_LIMITS, type BucketSpec, type ThrottleLimits } from './throttle.ts';

export const OPERATIONS = [
  'ChangeResourceRecordSets',
  'ListResourceRecordSets',
  'GetChange',
  'GetHostedZone',
  'ListHostedZonesByName',
  'CreateHostedZone',
] as const;
export type Operation = (typeof OPERATIONS)[number];

export type Fault =
  /** 400 Throttling "Rate exceeded", as the account rate limit answers. */
  | { readonly kind: 'throttling'; readonly operation?: Operation; readonly count?: number }
  /** 400 PriorRequestNotComplete. */
  | { readonly kind: 'priorRequestNotComplete'; readonly operation?: Operation; readonly count?: number }
  /** 500 InternalFailure (Type Receiver). */
  | { readonly kind: 'internalFailure'; readonly operation?: Operation; readonly count?: number }
  /** Delays the answer; the call then proceeds normally. */
  | { readonly kind: 'latency'; readonly ms: number; readonly operation?: Operation; readonly count?: number }
  /** Rejects the next change batch(es) with these InvalidChangeBatch messages, applying nothing. */
  | { readonly kind: 'invalidChangeBatch'; readonly messages: readonly string[]; readonly count?: number };

export interface CallRecord {
  readonly operation: Operation | 'Unknown';
  /** Epoch ms when the request arrived. */
  readonly at: number;
  readonly zoneId: string | undefined;
  /** Change elements in a ChangeResourceRecordSets request (0 otherwise, or when unparsable). */
  readonly changeCount: number;
  readonly status: number;
  /** The AWS error code when the call failed. */
  readonly errorCode: string | undefined;
  /** Set when an injected fault answered the call. */
  readonly fault: Fault['kind'] | undefined;
  /** Set when the rate limit answered Throttling: the bucket that was short (AWS does not say). */
  readonly throttledBy: BucketName | undefined;
}

export interface Route53DoubleOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** How long a change stays PENDING before GetChange reports INSYNC. Default 200. */
  readonly insyncDelayMs?: number;
  /**
   * Token buckets per access key id (see throttle.ts). Default DOCUMENTED_LIMITS (account 50 / 10 per
   * second, per operation 50 / 10, CreateHostedZone 40 / 2, no change-throughput bucket);
   * LEGACY_LIMITS is the old 5 requests/s; false turns throttling off.
   */
  readonly rateLimit?: ThrottleLimits | false;
  /**
   * Answer PriorRequestNotComplete to a ChangeResourceRecordSets on a zone
   * whose previous change is still PENDING. Off by default: AWS documents the
   * error for a zone still *processing* a request, and real clients (e.g.
   * external-dns, 1 s between batches) submit new batches while older ones
   * are PENDING for tens of seconds without it. Use a fault for the usual case.
   */
  readonly rejectChangesWhilePending?: boolean;
  /** Zones to create at start. */
  readonly zones?: readonly string[];
}

export interface RecordKey {
  readonly name: string;
  readonly type: string;
  readonly setIdentifier?: string;
}

export interface Route53Double {
  /** http://127.0.0.1:<port> — give it to the SDK as `endpoint` or AWS_ENDPOINT_URL_ROUTE_53. */
  readonly endpoint: string;
  readonly port: number;
  /** Creates a hosted zone with its SOA and NS sets; returns the bare id (`Z…`). */
  createZone(name: string): string;
  /** The zone's record sets in ListResourceRecordSets order (copies). */
  records(zoneId: string): RecordSet[];
  /** Writes a record set "by hand", bypassing every rule, to simulate drift. Name and Type are required. */
  setRecord(zoneId: string, recordSet: ResourceRecordSet): void;
  /** Deletes a record set "by hand"; false if there was none. */
  deleteRecord(zoneId: string, key: RecordKey): boolean;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Every AWS call so far, oldest first (admin calls are not logged). */
  calls(): CallRecord[];
  /** Back to empty: no zones, changes, faults or calls; the rate limit refilled. */
  reset(): void;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const PATH_PREFIX = '/2013-04-01';

interface PendingFault {
  readonly fault: Fault;
  remaining: number;
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

class Double {
  readonly #options: Route53DoubleOptions;
  zones = new Map<string, Zone>();
  changes = new Map<string, ChangeInfo>();
  faults: PendingFault[] = [];
  callLog: CallRecord[] = [];
  throttles = new Map<string, AccountThrottle>();

  constructor(options: Route53DoubleOptions) {
    this.#options = options;
  }

  reset(): void {
    this.zones.clear();
    this.changes.clear();
    this.faults = [];
    this.callLog = [];
    this.throttles.clear();
  }

  createZone(name: string, callerReference: string = randomUUID(), comment?: string): { zone: Zone; change: ChangeInfo } {
    if (!/^[a-z0-9*\\_-]+(\.[a-z0-9*\\_-]+)*\.?$/i.test(name))
      throw new Route53Error('InvalidDomainName', 400, `${name} is not a valid domain name.`);
    const zone = newZone(name, callerReference, comment);
    this.zones.set(zone.id, zone);
    return { zone, change: this.#recordChange(zone, undefined) };
  }

  zone(id: string): Zone {
    const zone = this.zones.get(id.replace(/^\/?hostedzone\//, ''));
    if (zone === undefined) throw new Route53Error('NoSuchHostedZone', 404, `No hosted zone found with ID: ${id}`);
    return zone;
  }

  #recordChange(zone: Zone, comment: string | undefined): ChangeInfo {
    const info: ChangeInfo = {
      id: awsId('C', 20),
      submittedAt: new Date(),
      comment,
      insyncAt: Date.now() + (this.#options.insyncDelayMs ?? 200),
    };
    this.changes.set(info.id, info);
    zone.lastChange = info;
    return info;
  }

  /** Consumes and returns the faults that apply to this call: latencies first, then at most one failure. */
  takeFaults(operation: Operation): { latencyMs: number; failure: Fault | undefined } {
    let latencyMs = 0;
    let failure: Fault | undefined;
    for (const pending of this.faults) {
      if (pending.remaining <= 0) continue;
      const { fault } = pending;
      const op = fault.kind === 'invalidChangeBatch' ? 'ChangeResourceRecordSets' : fault.operation;
      if (op !== undefined && op !== operation) continue;
      if (fault.kind === 'latency') {
        latencyMs += fault.ms;
        pending.remaining--;
      } else if (failure === undefined) {
        failure = fault;
        pending.remaining--;
      }
    }
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return { latencyMs, failure };
  }

  /** The bucket that throttles this call, or undefined when it is admitted. */
  throttledBy(account: string, operation: Operation, changeCount: number): BucketName | undefined {
    const limits = this.#options.rateLimit ?? DOCUMENTED_LIMITS;
    if (limits === false) return undefined;
    const now = Date.now();
    let throttle = this.throttles.get(account);
    if (throttle === undefined) {
      throttle = new AccountThrottle(limits, now);
      this.throttles.set(account, throttle);
    }
    const answer = throttle.admit(operation, changeCount, now);
    return answer.admitted ? undefined : answer.bucket;
  }

  // ----- operations -------------------------------------------------------

  changeResourceRecordSets(zoneId: string, body: XmlElement, injected: Fault | undefined): Reply {
    const zone = this.zone(zoneId);
    const batch = requireChild(body, 'ChangeBatch');
    const comment = child(batch, 'Comment')?.text;
    const changeElements = children(requireChild(batch, 'Changes'), 'Change');
    if (changeElements.length === 0) throw invalidInput('Invalid request: ChangeBatch must contain at least one Change');
    const changes = changeElements.map(parseChange);
    if (injected?.kind === 'invalidChangeBatch') throw invalidChangeBatch(injected.messages);
    if (this.#options.rejectChangesWhilePending === true && zone.lastChange !== undefined && Date.now() < zone.lastChange.insyncAt) {
      throw priorRequestNotComplete();
    }
    checkLimits(changes);
    zone.records = applyChangeBatch(zone, changes);
    return ok('ChangeResourceRecordSetsResponse', { ChangeInfo: changeInfoXml(this.#recordChange(zone, comment)) });
  }

  listResourceRecordSets(zoneId: string, query: URLSearchParams): Reply {
    const zone = this.zone(zoneId);
    const startName = query.get('name');
    const startType = query.get('type');
    const startIdentifier = query.get('identifier');
    if (startType !== null && startName === null) throw invalidInput('The input is not valid: StartRecordType requires StartRecordName');
    if (startIdentifier !== null && startType === null)
      throw invalidInput('The input is not valid: StartRecordIdentifier requires StartRecordType');
    const maxItems = parseMaxItems(query.get('maxitems'), LIMITS.maxItems);
    let sets = sortedRecords(zone);
    if (startName !== null) {
      const start = { name: normaliseName(startName), type: startType ?? '', setIdentifier: startIdentifier ?? undefined };
      sets = sets.filter((s) => compareRecordKeys({ name: s.Name, type: s.Type, setIdentifier: s.SetIdentifier }, start) >= 0);
    }
    const page = sets.slice(0, maxItems);
    const next = sets[maxItems];
    return ok('ListResourceRecordSetsResponse', {
      ResourceRecordSets: { ResourceRecordSet: page.map(recordSetXml) },
      IsTruncated: next !== undefined,
      NextRecordName: next?.Name,
      NextRecordType: next?.Type,
      NextRecordIdentifier: next?.SetIdentifier,
      MaxItems: maxItems,
    });
  }

  getChange(id: string): Reply {
    const info = this.changes.get(id.replace(/^\/?change\//, ''));
    if (info === undefined) throw new Route53Error('NoSuchChange', 404, `A change with the specified change ID does not exist: ${id}`);
    return ok('GetChangeResponse', { ChangeInfo: changeInfoXml(info) });
  }

  getHostedZone(id: string): Reply {
    const zone = this.zone(id);
    return ok('GetHostedZoneResponse', { HostedZone: hostedZoneXml(zone), DelegationSet: delegationSetXml(zone) });
  }

  createHostedZone(body: XmlElement): Reply {
    const name = requireChild(body, 'Name').text;
    const callerReference = requireChild(body, 'CallerReference').text;
    const comment = child(child(body, 'HostedZoneConfig') ?? body, 'Comment')?.text;
    if ([...this.zones.values()].some((z) => z.callerReference === callerReference)) {
      throw new Route53Error('HostedZoneAlreadyExists', 409, `A hosted zone has already been created with the specified caller reference.`);
    }
    const { zone, change } = this.createZone(name, callerReference, comment);
    return {
      ...ok('CreateHostedZoneResponse', {
        HostedZone: hostedZoneXml(zone),
        ChangeInfo: changeInfoXml(change),
        DelegationSet: delegationSetXml(zone),
      }),
      status: 201,
      headers: { location: `https://route53.amazonaws.com/2013-04-01/hostedzone/${zone.id}` },
    };
  }

  listHostedZonesByName(query: URLSearchParams): Reply {
    const dnsName = query.get('dnsname');
    const zoneId = query.get('hostedzoneid');
    if (zoneId !== null && dnsName === null) throw invalidInput('The input is not valid: hostedzoneid requires dnsname');
    const maxItems = parseMaxItems(query.get('maxitems'), 100);
    const key = (z: Zone): { name: string; type: string; setIdentifier: string } => ({ name: z.name, type: '', setIdentifier: z.id });
    let zones = [...this.zones.values()].sort((a, b) => compareRecordKeys(key(a), key(b)));
    if (dnsName !== null) {
      const start = { name: normaliseName(dnsName), type: '', setIdentifier: zoneId ?? '' };
      zones = zones.filter((z) => compareRecordKeys(key(z), start) >= 0);
    }
    const page = zones.slice(0, maxItems);
    const next = zones[maxItems];
    return ok('ListHostedZonesByNameResponse', {
      HostedZones: { HostedZone: page.map(hostedZoneXml) },
      DNSName: dnsName ?? undefined,
      HostedZoneId: zoneId ?? undefined,
      IsTruncated: next !== undefined,
      MaxItems: maxItems,
      NextDNSName: next?.name,
      NextHostedZoneId: next?.id,
    });
  }
}

// ---------------------------------------------------------------------------
// XML in and out

function requireChild(element: XmlElement, name: string): XmlElement {
  const found = child(element, name);
  if (found === undefined) throw invalidInput(`Invalid XML ; missing element ${name} in ${element.name}`);
  return found;
}

const KNOWN_RRSET_FIELDS = new Set([
  'Name',
  'Type',
  'SetIdentifier',
  'Weight',
  'Region',
  'Failover',
  'MultiValueAnswer',
  'TTL',
  'ResourceRecords',
  'AliasTarget',
  'HealthCheckId',
]);

function parseChange(element: XmlElement): Change {
  const action = requireChild(element, 'Action').text;
  if (action !== 'CREATE' && action !== 'DELETE' && action !== 'UPSERT') {
    throw invalidInput(
      `Invalid XML ; cvc-enumeration-valid: Value '${action}' is not facet-valid with respect to enumeration '[CREATE, DELETE, UPSERT]'.`,
    );
  }
  const rrs = requireChild(element, 'ResourceRecordSet');
  for (const field of rrs.children) {
    // Say so rather than silently drop a routing option the double does not model.
    if (!KNOWN_RRSET_FIELDS.has(field.name)) throw invalidInput(`The Route53 double does not implement ResourceRecordSet.${field.name}`);
  }
  const rawName = requireChild(rrs, 'Name').text;
  const set: RecordSet = { Name: normaliseName(rawName), Type: requireChild(rrs, 'Type').text };
  const text = (name: string): string | undefined => child(rrs, name)?.text;
  const integer = (name: string): number | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value.trim())) throw invalidInput(`Invalid XML ; ${name} '${value}' is not a valid integer`);
    return Number(value);
  };
  const setIdentifier = text('SetIdentifier');
  if (setIdentifier !== undefined) {
    checkSetIdentifierLength(setIdentifier);
    set.SetIdentifier = setIdentifier;
  }
  const weight = integer('Weight');
  if (weight !== undefined) set.Weight = weight;
  const region = text('Region');
  if (region !== undefined) set.Region = region;
  const failover = text('Failover');
  if (failover !== undefined) set.Failover = failover;
  const multiValue = text('MultiValueAnswer');
  if (multiValue !== undefined) set.MultiValueAnswer = multiValue.trim() === 'true';
  const ttl = integer('TTL');
  if (ttl !== undefined) set.TTL = ttl;
  const records = child(rrs, 'ResourceRecords');
  if (records !== undefined)
    set.ResourceRecords = children(records, 'ResourceRecord').map((r) => ({ Value: requireChild(r, 'Value').text }));
  const alias = child(rrs, 'AliasTarget');
  if (alias !== undefined) {
    set.AliasTarget = {
      HostedZoneId: requireChild(alias, 'HostedZoneId').text,
      DNSName: normaliseName(requireChild(alias, 'DNSName').text),
      EvaluateTargetHealth: requireChild(alias, 'EvaluateTargetHealth').text.trim() === 'true',
    };
  }
  const healthCheck = text('HealthCheckId');
  if (healthCheck !== undefined) set.HealthCheckId = healthCheck;
  const change: Change = { action, recordSet: set };
  checkChangeShape(change, rawName);
  return change;
}

function parseMaxItems(raw: string | null, max: number): number {
  if (raw === null) return max;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw invalidInput(`The input is not valid: maxitems '${raw}'`);
  return Math.min(Number(raw), max);
}

function recordSetXml(set: RecordSet): XmlNode {
  return {
    Name: set.Name,
    Type: set.Type,
    SetIdentifier: set.SetIdentifier,
    Weight: set.Weight,
    Region: set.Region,
    Failover: set.Failover,
    MultiValueAnswer: set.MultiValueAnswer,
    TTL: set.TTL,
    ResourceRecords:
      set.ResourceRecords === undefined ? undefined : { ResourceRecord: set.ResourceRecords.map((r) => ({ Value: r.Value })) },
    AliasTarget: set.AliasTarget === undefined ? undefined : { ...set.AliasTarget },
    HealthCheckId: set.HealthCheckId,
  };
}

function changeInfoXml(info: ChangeInfo): XmlNode {
  return {
    Id: `/change/${info.id}`,
    Status: Date.now() >= info.insyncAt ? 'INSYNC' : 'PENDING',
    SubmittedAt: info.submittedAt.toISOString(),
    Comment: info.comment,
  };
}

function hostedZoneXml(zone: Zone): XmlNode {
  return {
    Id: `/hostedzone/${zone.id}`,
    Name: zone.name,
    CallerReference: zone.callerReference,
    Config: { Comment: zone.comment, PrivateZone: false },
    ResourceRecordSetCount: zone.records.size,
  };
}

function delegationSetXml(zone: Zone): XmlNode {
  return { NameServers: { NameServer: [...zone.nameServers] } };
}

function ok(root: string, body: XmlNode): Reply {
  return { status: 200, body: route53Document(root, body) };
}

function errorReply(error: Route53Error, requestId: string): Reply {
  const type = error.status >= 500 ? 'Receiver' : 'Sender';
  return {
    status: error.status,
    body: route53Document('ErrorResponse', { Error: { Type: type, Code: error.code, Message: error.message }, RequestId: requestId }),
  };
}

function priorRequestNotComplete(): Route53Error {
  return new Route53Error(
    'PriorRequestNotComplete',
    400,
    'The request was rejected because Route 53 was still processing a prior request.',
  );
}

function faultError(fault: Fault): Route53Error | undefined {
  switch (fault.kind) {
    case 'throttling':
      return new Route53Error('Throttling', 400, 'Rate exceeded');
    case 'priorRequestNotComplete':
      return priorRequestNotComplete();
    case 'internalFailure':
      return new Route53Error('InternalFailure', 500, 'An internal error occurred.');
    default:
      // invalidChangeBatch is raised after the request parsed, like the real one.
      return undefined;
  }
}

// ---------------------------------------------------------------------------
// HTTP

interface Route {
  readonly operation: Operation;
  readonly id: string | undefined;
}

function route(method: string, path: string): Route | undefined {
  const rest = path.startsWith(`${PATH_PREFIX}/`) ? path.slice(PATH_PREFIX.length) : undefined;
  if (rest === undefined) return undefined;
  const trimmed = rest.replace(/\/$/, '');
  let m: RegExpExecArray | null;
  if ((m = /^\/hostedzone\/([^/]+)\/rrset$/.exec(trimmed)) !== null) {
    if (method === 'POST') return { operation: 'ChangeResourceRecordSets', id: decodeURIComponent(m[1] ?? '') };
    if (method === 'GET') return { operation: 'ListResourceRecordSets', id: decodeURIComponent(m[1] ?? '') };
  }
  if ((m = /^\/hostedzone\/([^/]+)$/.exec(trimmed)) !== null && method === 'GET')
    return { operation: 'GetHostedZone', id: decodeURIComponent(m[1] ?? '') };
  if (trimmed === '/hostedzone' && method === 'POST') return { operation: 'CreateHostedZone', id: undefined };
  if ((m = /^\/change\/([^/]+)$/.exec(trimmed)) !== null && method === 'GET')
    return { operation: 'GetChange', id: decodeURIComponent(m[1] ?? '') };
  if (trimmed === '/hostedzonesbyname' && method === 'GET') return { operation: 'ListHostedZonesByName', id: undefined };
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(invalidInput(`Request body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function accountOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth === undefined) return undefined;
  return /Credential=([^/,\s]+)/.exec(auth)?.[1] ?? 'anonymous';
}

function send(res: ServerResponse, reply: Reply, requestId: string, contentType = 'text/xml'): void {
  res.writeHead(reply.status, { 'content-type': contentType, 'x-amzn-requestid': requestId, ...reply.headers });
  res.end(reply.body);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function handleAws(state: Double, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const requestId = randomUUID();
  const at = Date.now();
  const found = route(req.method ?? 'GET', url.pathname);
  let changeCount = 0;
  let appliedFault: Fault | undefined;
  let throttledBy: BucketName | undefined;
  const finish = (reply: Reply, errorCode?: string): void => {
    state.callLog.push({
      operation: found?.operation ?? 'Unknown',
      at,
      zoneId: found?.operation === 'GetChange' ? undefined : found?.id,
      changeCount,
      status: reply.status,
      errorCode,
      fault: appliedFault?.kind,
      throttledBy,
    });
    send(res, reply, requestId);
  };
  try {
    const body = await readBody(req);
    if (found === undefined) {
      throw new Route53Error('InvalidAction', 400, `The Route53 double does not implement ${req.method ?? ''} ${url.pathname}`);
    }
    const account = accountOf(req);
    if (account === undefined) {
      throw new Route53Error('MissingAuthenticationToken', 403, 'Missing Authentication Token');
    }
    let xml: XmlElement | undefined;
    if (req.method === 'POST') {
      try {
        xml = parseXml(body);
      } catch (error) {
        if (error instanceof XmlSyntaxError) throw invalidInput(`Invalid XML ; ${error.message}`);
        throw error;
      }
      if (found.operation === 'ChangeResourceRecordSets') {
        changeCount = children(child(child(xml, 'ChangeBatch') ?? xml, 'Changes') ?? xml, 'Change').length;
      }
    }
    // The account limit is checked before faults so a throttled call never
    // consumes a fault meant for the next real attempt.
    throttledBy = state.throttledBy(account, found.operation, changeCount);
    if (throttledBy !== undefined) throw new Route53Error('Throttling', 400, 'Rate exceeded');
    const { latencyMs, failure } = state.takeFaults(found.operation);
    if (latencyMs > 0) {
      appliedFault = { kind: 'latency', ms: latencyMs };
      await sleep(latencyMs);
    }
    if (failure !== undefined) {
      appliedFault = failure;
      const error = faultError(failure);
      if (error !== undefined) throw error;
    }
    const query = url.searchParams;
    const id = found.id ?? '';
    let reply: Reply;
    switch (found.operation) {
      case 'ChangeResourceRecordSets':
        reply = state.changeResourceRecordSets(id, xml ?? parseXml(body), failure);
        break;
      case 'ListResourceRecordSets':
        reply = state.listResourceRecordSets(id, query);
        break;
      case 'GetChange':
        reply = state.getChange(id);
        break;
      case 'GetHostedZone':
        reply = state.getHostedZone(id);
        break;
      case 'CreateHostedZone':
        reply = state.createHostedZone(xml ?? parseXml(body));
        break;
      case 'ListHostedZonesByName':
        reply = state.listHostedZonesByName(query);
        break;
    }
    finish(reply);
  } catch (error) {
    const r53 = error instanceof Route53Error ? error : new Route53Error('InternalFailure', 500, `double bug: ${String(error)}`);
    finish(errorReply(r53, requestId), r53.code);
  }
}

// ----- admin endpoint (JSON) ------------------------------------------------

async function handleAdmin(api: Route53Double, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const json = (status: number, value?: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(value === undefined ? '' : JSON.stringify(value));
  };
  try {
    const raw = await readBody(req);
    const body: unknown = raw === '' ? undefined : JSON.parse(raw);
    const path = url.pathname.replace(/\/$/, '');
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;
    if (path === '/_double/calls' && method === 'GET') return json(200, api.calls());
    if (path === '/_double/reset' && method === 'POST') {
      api.reset();
      return json(204);
    }
    if (path === '/_double/faults' && method === 'POST') {
      api.injectFault(body as Fault);
      return json(204);
    }
    if (path === '/_double/faults' && method === 'DELETE') {
      api.clearFaults();
      return json(204);
    }
    if (path === '/_double/zones' && method === 'POST') {
      const name = (body as { name?: unknown } | undefined)?.name;
      if (typeof name !== 'string') return json(400, { error: 'body must be {"name": "<zone>"}' });
      return json(201, { zoneId: api.createZone(name) });
    }
    if ((m = /^\/_double\/zones\/([^/]+)\/records$/.exec(path)) !== null) {
      const zoneId = decodeURIComponent(m[1] ?? '');
      if (method === 'GET') return json(200, api.records(zoneId));
      if (method === 'PUT') {
        api.setRecord(zoneId, body as ResourceRecordSet);
        return json(204);
      }
      if (method === 'DELETE') {
        const name = url.searchParams.get('name');
        const type = url.searchParams.get('type');
        const setIdentifier = url.searchParams.get('identifier');
        if (name === null || type === null) return json(400, { error: 'name and type query parameters are required' });
        const deleted = api.deleteRecord(zoneId, setIdentifier === null ? { name, type } : { name, type, setIdentifier });
        return json(deleted ? 204 : 404);
      }
    }
    return json(404, { error: `no admin route ${method} ${path}` });
  } catch (error) {
    json(error instanceof Route53Error && error.status === 404 ? 404 : 400, {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

function validateFault(fault: Fault): void {
  const kinds: readonly string[] = ['throttling', 'priorRequestNotComplete', 'internalFailure', 'latency', 'invalidChangeBatch'];
  if (typeof fault !== 'object' || !kinds.includes(fault.kind)) throw new Error(`unknown fault kind; expected one of ${kinds.join(', ')}`);
  if (fault.count !== undefined && (!Number.isInteger(fault.count) || fault.count < 1))
    throw new Error('fault count must be a positive integer');
  if (fault.kind !== 'invalidChangeBatch' && fault.operation !== undefined && !OPERATIONS.includes(fault.operation)) {
    throw new Error(`unknown operation ${String(fault.operation)}`);
  }
  if (fault.kind === 'latency' && (!Number.isFinite(fault.ms) || fault.ms < 0 || fault.ms > 600_000))
    throw new Error('latency ms must be 0..600000');
  if (fault.kind === 'invalidChangeBatch' && (!Array.isArray(fault.messages) || fault.messages.length === 0))
    throw new Error('invalidChangeBatch needs messages');
}

export async function startRoute53Double(options: Route53DoubleOptions = {}): Promise<Route53Double> {
  const state = new Double(options);
  // The admin routes need the API object, which needs the bound port.
  const late: { api?: Route53Double } = {};
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const handled =
      url.pathname.startsWith('/_double/') && late.api !== undefined
        ? handleAdmin(late.api, req, res, url)
        : handleAws(state, req, res, url);
    handled.catch(() => res.destroy());
  });
  // Bounded: a client that stalls mid-request is cut off.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: options.port ?? 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const zoneFor = (zoneId: string): Zone => state.zone(zoneId);
  const api: Route53Double = {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    createZone: (name) => state.createZone(name).zone.id,
    records: (zoneId) => sortedRecords(zoneFor(zoneId)).map((s) => structuredClone(s)),
    setRecord(zoneId, recordSet) {
      const zone = zoneFor(zoneId);
      if (typeof recordSet.Name !== 'string' || typeof recordSet.Type !== 'string') throw new Error('setRecord needs Name and Type');
      // Undefined members would otherwise show up as empty XML elements.
      const set = JSON.parse(JSON.stringify(recordSet)) as RecordSet;
      set.Name = normaliseName(set.Name);
      zone.records.set(recordKey(set.Name, set.Type, set.SetIdentifier), set);
    },
    deleteRecord(zoneId, key) {
      return zoneFor(zoneId).records.delete(recordKey(normaliseName(key.name), key.type, key.setIdentifier));
    },
    injectFault(fault) {
      validateFault(fault);
      state.faults.push({ fault, remaining: fault.count ?? 1 });
    },
    clearFaults() {
      state.faults = [];
    },
    calls: () => [...state.callLog],
    reset: () => state.reset(),
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  late.api = api;
  for (const zone of options.zones ?? []) api.createZone(zone);
  return api;
}
