// What the Consul agent does to data before a watch handler sees it: the
// blocking query's JSON is decoded into Go `api.ServiceEntry` structs and
// re-encoded with `json.Encoder`. The handler must cope with that exact byte
// stream, so the double reproduces it instead of passing the raw HTTP body on:
// struct fields in Go declaration order, zero values for absent fields, map
// keys sorted, HTML-safe escaping, durations as `time.Duration.String()`, and
// one trailing newline. Field lists follow hashicorp/consul api/health.go,
// api/agent.go and api/catalog.go as captured in the shared fixture.

/** A Go map: encoded with its keys sorted bytewise, unlike a struct (insertion order). */
export class GoMap<V> {
  readonly entries: Map<string, V>;
  constructor(entries: Iterable<readonly [string, V]>) {
    this.entries = new Map(entries);
  }
}

export type GoValue = null | boolean | number | string | GoValue[] | GoMap<GoValue> | { readonly [field: string]: GoValue };

const HEX = '0123456789abcdef';

function encodeString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    // A lone surrogate is invalid UTF-8 on the Go side, which encodes U+FFFD.
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += value[i]! + value[i + 1]!;
        i++;
      } else {
        out += '\ufffd';
      }
      continue;
    }
    if (code >= 0xdc00 && code <= 0xdfff) {
      out += '\ufffd';
      continue;
    }
    switch (code) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += '\\\\';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
      // Go ≥1.22 writes these two short forms.
      case 0x08:
        out += '\\b';
        continue;
      case 0x0c:
        out += '\\f';
        continue;
      // json.Encoder's default SetEscapeHTML(true), and JSONP-safe line separators.
      case 0x3c:
      case 0x3e:
      case 0x26:
      case 0x2028:
      case 0x2029:
        out += `\\u${code.toString(16).padStart(4, '0')}`;
        continue;
    }
    if (code < 0x20) {
      out += `\\u00${HEX[code >> 4]!}${HEX[code & 0xf]!}`;
      continue;
    }
    out += value[i]!;
  }
  return `${out}"`;
}

function compareBytes(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

/** Compact Go `json.Marshal` text of a value (no trailing newline). */
export function goMarshal(value: GoValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`goMarshal: unsupported number ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return encodeString(value);
  if (Array.isArray(value)) return `[${value.map(goMarshal).join(',')}]`;
  if (value instanceof GoMap) {
    const keys = [...value.entries.keys()].sort(compareBytes);
    return `{${keys.map((k) => `${encodeString(k)}:${goMarshal(value.entries.get(k) ?? null)}`).join(',')}}`;
  }
  return `{${Object.entries(value)
    .map(([k, v]) => `${encodeString(k)}:${goMarshal(v)}`)
    .join(',')}}`;
}

/** `json.NewEncoder(w).Encode(v)`: Marshal plus one newline. */
export function goEncode(value: GoValue): string {
  return `${goMarshal(value)}\n`;
}

// ---------------------------------------------------------------------------
// Durations

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go `time.ParseDuration` (in ms); a bare number is taken as nanoseconds, as Go's JSON decoding of a Duration does. Null when unparseable. */
export function parseGoDuration(input: unknown): number | null {
  if (typeof input === 'number') return Number.isFinite(input) ? input / 1e6 : null;
  if (typeof input !== 'string') return null;
  let s = input.trim();
  if (s === '0') return 0;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '') return null;
  let totalNs = 0;
  const part = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  let guard = 0;
  while (s.length > 0 && guard++ < 20) {
    const m = part.exec(s);
    if (m === null) return null;
    totalNs += Number(m[1]) * UNIT_NS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  if (s.length > 0) return null;
  return (sign * totalNs) / 1e6;
}

function formatFraction(value: number, digits: number): string {
  // Go prints the shortest exact fraction: 1.5s, 1.25ms, no trailing zeros.
  const text = value.toFixed(digits);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** Go `time.Duration.String()` of a duration in ms: "0s", "500ms", "10s", "10m0s", "1h0m0s". */
export function formatGoDuration(ms: number): string {
  const ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  const negative = ns < 0;
  let rest = Math.abs(ns);
  let out: string;
  if (rest < 1e9) {
    if (rest < 1e3) out = `${rest}ns`;
    else if (rest < 1e6) out = `${formatFraction(rest / 1e3, 3)}µs`;
    else out = `${formatFraction(rest / 1e6, 6)}ms`;
  } else {
    const hours = Math.floor(rest / 3600e9);
    rest -= hours * 3600e9;
    const minutes = Math.floor(rest / 60e9);
    rest -= minutes * 60e9;
    const seconds = formatFraction(rest / 1e9, 9);
    if (hours > 0) out = `${hours}h${minutes}m${seconds}s`;
    else if (minutes > 0) out = `${minutes}m${seconds}s`;
    else out = `${seconds}s`;
  }
  return negative ? `-${out}` : out;
}

// ---------------------------------------------------------------------------
// Raw HTTP JSON → Go api.ServiceEntry → re-encodable value

type Raw = Record<string, unknown>;

// Go's decoder matches field names case-insensitively.
function field(raw: unknown, name: string): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const obj = raw as Raw;
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) if (key.toLowerCase() === lower) return obj[key];
  return undefined;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);
const bool = (v: unknown): boolean => v === true;
const isObject = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

function stringList(v: unknown): GoValue {
  return Array.isArray(v) ? v.map(str) : null;
}

function stringMap(v: unknown): GoValue {
  return isObject(v) ? new GoMap(Object.entries(v).map(([k, x]) => [k, str(x)] as const)) : null;
}

function headerMap(v: unknown): GoValue {
  return isObject(v) ? new GoMap(Object.entries(v).map(([k, x]) => [k, stringList(x)] as const)) : null;
}

function duration(v: unknown): string {
  return formatGoDuration(parseGoDuration(v) ?? 0);
}

function goNode(raw: unknown): GoValue {
  if (!isObject(raw)) return null;
  const out: Record<string, GoValue> = {
    ID: str(field(raw, 'ID')),
    Node: str(field(raw, 'Node')),
    Address: str(field(raw, 'Address')),
    Datacenter: str(field(raw, 'Datacenter')),
    TaggedAddresses: stringMap(field(raw, 'TaggedAddresses')),
    Meta: stringMap(field(raw, 'Meta')),
    CreateIndex: int(field(raw, 'CreateIndex')),
    ModifyIndex: int(field(raw, 'ModifyIndex')),
  };
  return out;
}

function goService(raw: unknown): GoValue {
  if (!isObject(raw)) return null;
  const out: Record<string, GoValue> = {};
  const kind = str(field(raw, 'Kind'));
  if (kind !== '') out['Kind'] = kind;
  out['ID'] = str(field(raw, 'ID'));
  out['Service'] = str(field(raw, 'Service'));
  out['Tags'] = stringList(field(raw, 'Tags'));
  out['Meta'] = stringMap(field(raw, 'Meta'));
  out['Port'] = int(field(raw, 'Port'));
  out['Address'] = str(field(raw, 'Address'));
  const tagged = field(raw, 'TaggedAddresses');
  if (isObject(tagged) && Object.keys(tagged).length > 0) {
    // api.ServiceAddress has no json tags, so lowercase keys come back capitalised.
    out['TaggedAddresses'] = new GoMap(
      Object.entries(tagged).map(([k, a]) => [k, { Address: str(field(a, 'Address')), Port: int(field(a, 'Port')) }] as const),
    );
  }
  const weights = field(raw, 'Weights');
  out['Weights'] = { Passing: int(field(weights, 'Passing')), Warning: int(field(weights, 'Warning')) };
  out['EnableTagOverride'] = bool(field(raw, 'EnableTagOverride'));
  const createIndex = int(field(raw, 'CreateIndex'));
  const modifyIndex = int(field(raw, 'ModifyIndex'));
  if (createIndex !== 0) out['CreateIndex'] = createIndex;
  if (modifyIndex !== 0) out['ModifyIndex'] = modifyIndex;
  if (isObject(field(raw, 'Proxy'))) out['Proxy'] = { MeshGateway: {}, Expose: {} };
  if (isObject(field(raw, 'Connect'))) out['Connect'] = {};
  return out;
}

function goCheck(raw: unknown): GoValue {
  const def = field(raw, 'Definition');
  return {
    Node: str(field(raw, 'Node')),
    CheckID: str(field(raw, 'CheckID')),
    Name: str(field(raw, 'Name')),
    Status: str(field(raw, 'Status')),
    Notes: str(field(raw, 'Notes')),
    Output: str(field(raw, 'Output')),
    ServiceID: str(field(raw, 'ServiceID')),
    ServiceName: str(field(raw, 'ServiceName')),
    ServiceTags: stringList(field(raw, 'ServiceTags')),
    Type: str(field(raw, 'Type')),
    ExposedPort: int(field(raw, 'ExposedPort')),
    Definition: {
      Interval: duration(field(def, 'Interval')),
      Timeout: duration(field(def, 'Timeout')),
      DeregisterCriticalServiceAfter: duration(field(def, 'DeregisterCriticalServiceAfter')),
      HTTP: str(field(def, 'HTTP')),
      Header: headerMap(field(def, 'Header')),
      Method: str(field(def, 'Method')),
      Body: str(field(def, 'Body')),
      TLSServerName: str(field(def, 'TLSServerName')),
      TLSSkipVerify: bool(field(def, 'TLSSkipVerify')),
      TCP: str(field(def, 'TCP')),
      TCPUseTLS: bool(field(def, 'TCPUseTLS')),
      GRPC: str(field(def, 'GRPC')),
      GRPCUseTLS: bool(field(def, 'GRPCUseTLS')),
    },
    CreateIndex: int(field(raw, 'CreateIndex')),
    ModifyIndex: int(field(raw, 'ModifyIndex')),
  };
}

/** Decodes a raw `/v1/health/service/<svc>` body the way `api.Health().Service` does. */
export function toGoServiceEntries(raw: unknown): GoValue {
  if (!Array.isArray(raw)) return null;
  return raw.map((entry) => ({
    Node: goNode(field(entry, 'Node')),
    Service: goService(field(entry, 'Service')),
    Checks: ((): GoValue => {
      const checks = field(entry, 'Checks');
      return Array.isArray(checks) ? checks.map(goCheck) : null;
    })(),
  }));
}
