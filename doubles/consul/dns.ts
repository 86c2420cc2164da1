// Consul's DNS interface over UDP for the names the project resolves:
//   [tag.]<svc>.service[.dc1[.dc]].consul      A / AAAA / SRV
//   _<svc>._<tag>.service[.dc1[.dc]].consul    SRV (RFC 2782; `_tcp` means any tag)
//   <node>.node[.dc1[.dc]].consul, <hex>.addr.dc1.consul   A / AAAA (SRV targets)
// As the agent does by default: instances with any critical check (service,
// node or maintenance) are left out, warning ones stay unless onlyPassing;
// TTL 0; answers shuffled; at most udpAnswerLimit records per answer;
// NXDOMAIN when no instance is left. Behaviour: hashicorp/consul agent/dns.go.
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import { DATACENTER, type ConsulStore, type ServiceRecord } from './store.ts';

export interface DnsOptions {
  readonly onlyPassing: boolean;
  readonly udpAnswerLimit: number;
}

type Answer = dnsPacket.Answer;
type Question = dnsPacket.Question;

const SOA: Answer = {
  type: 'SOA',
  name: 'consul',
  ttl: 0,
  class: 'IN',
  data: { mname: 'ns.consul', rname: 'hostmaster.consul', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 0 },
};

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Strips `.consul`, an optional `.dc1[.dc]`, and returns the labels before the type label. */
function parseName(name: string): { kind: 'service' | 'node' | 'addr'; labels: string[] } | null {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.');
  if (labels.pop() !== 'consul') return null;
  if (labels.at(-1) === 'dc') labels.pop();
  if (labels.at(-1) === DATACENTER) labels.pop();
  const kind = labels.pop();
  if (kind !== 'service' && kind !== 'node' && kind !== 'addr') return null;
  return { kind, labels };
}

function hexToIp(hex: string): string | null {
  if (/^[0-9a-f]{8}$/.test(hex)) return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  if (/^[0-9a-f]{32}$/.test(hex)) return hex.match(/.{4}/g)!.join(':');
  return null;
}

function ipToHex(ip: string): string {
  if (isIP(ip) === 4)
    return ip
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('');
  const groups = ip.split('::');
  const head = groups[0] === '' || groups[0] === undefined ? [] : groups[0].split(':');
  const tail = groups[1] === undefined || groups[1] === '' ? [] : groups[1].split(':');
  const full = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return full.map((g) => g.padStart(4, '0')).join('');
}

export class ConsulDns {
  readonly #store: ConsulStore;
  readonly #options: DnsOptions;
  #socket: Socket | null = null;

  constructor(store: ConsulStore, options: DnsOptions) {
    this.#store = store;
    this.#options = options;
  }

  async listen(port: number): Promise<number> {
    const socket = createSocket('udp4');
    this.#socket = socket;
    socket.on('message', (message, remote) => {
      const reply = this.#answer(message);
      if (reply !== null) socket.send(reply, remote.port, remote.address);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    return socket.address().port;
  }

  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  #healthyInstances(name: string, tag: string | null): ServiceRecord[] {
    return this.#store.serviceInstances(name).filter((service) => {
      if (tag !== null && !service.tags.some((t) => t.toLowerCase() === tag)) return false;
      const checks = this.#store.instanceChecks(service);
      return checks.every((c) => c.status === 'passing' || (c.status === 'warning' && !this.#options.onlyPassing));
    });
  }

  #instanceAddress(service: ServiceRecord): string {
    return service.address !== '' ? service.address : (this.#store.nodes.get(service.node)?.address ?? '');
  }

  #addressRecord(name: string, address: string, type: string): Answer | null {
    const family = isIP(address);
    if (family === 4 && (type === 'A' || type === 'ANY')) return { type: 'A', name, ttl: 0, class: 'IN', data: address };
    if (family === 6 && (type === 'AAAA' || type === 'ANY')) return { type: 'AAAA', name, ttl: 0, class: 'IN', data: address };
    return null;
  }

  #srvTarget(service: ServiceRecord): string {
    const node = this.#store.nodes.get(service.node);
    const address = this.#instanceAddress(service);
    if (node !== undefined && (service.address === '' || service.address === node.address)) {
      return `${node.name}.node.${DATACENTER}.consul`;
    }
    return `${ipToHex(address)}.addr.${DATACENTER}.consul`;
  }

  /** Answers, additionals, and whether the name exists at all. */
  #resolve(question: Question): { answers: Answer[]; additionals: Answer[]; exists: boolean } {
    const parsed = parseName(question.name);
    const type = question.type as string;
    if (parsed === null) return { answers: [], additionals: [], exists: false };
    const limit = Math.max(1, this.#options.udpAnswerLimit);

    if (parsed.kind === 'node') {
      const node = this.#store.nodes.get(parsed.labels.join('.'));
      if (node === undefined) return { answers: [], additionals: [], exists: false };
      const record = this.#addressRecord(question.name, node.address, type);
      return { answers: record === null ? [] : [record], additionals: [], exists: true };
    }
    if (parsed.kind === 'addr') {
      const ip = parsed.labels.length === 1 ? hexToIp(parsed.labels[0]!) : null;
      if (ip === null) return { answers: [], additionals: [], exists: false };
      const record = this.#addressRecord(question.name, ip, type);
      return { answers: record === null ? [] : [record], additionals: [], exists: true };
    }

    let serviceName: string;
    let tag: string | null = null;
    const [first, second] = parsed.labels;
    if (parsed.labels.length === 2 && first!.startsWith('_') && second!.startsWith('_')) {
      serviceName = first!.slice(1);
      tag = second!.slice(1) === 'tcp' ? null : second!.slice(1);
    } else if (parsed.labels.length === 2) {
      tag = first!;
      serviceName = second!;
    } else if (parsed.labels.length === 1) {
      serviceName = first!;
    } else {
      return { answers: [], additionals: [], exists: false };
    }
    const instances = shuffle(this.#healthyInstances(serviceName, tag));
    if (instances.length === 0) return { answers: [], additionals: [], exists: false };

    if (type === 'SRV') {
      const answers: Answer[] = [];
      const additionals: Answer[] = [];
      for (const service of instances.slice(0, limit)) {
        const target = this.#srvTarget(service);
        const warning = this.#store.instanceChecks(service).some((c) => c.status === 'warning');
        answers.push({
          type: 'SRV',
          name: question.name,
          ttl: 0,
          class: 'IN',
          data: { priority: 1, weight: warning ? service.weights.warning : service.weights.passing, port: service.port, target },
        });
        const address = this.#instanceAddress(service);
        const extra = this.#addressRecord(target, address, isIP(address) === 6 ? 'AAAA' : 'A');
        if (extra !== null) additionals.push(extra);
      }
      return { answers, additionals, exists: true };
    }
    const answers: Answer[] = [];
    const seen = new Set<string>();
    for (const service of instances) {
      const address = this.#instanceAddress(service);
      if (seen.has(address)) continue;
      seen.add(address);
      const record = this.#addressRecord(question.name, address, type);
      if (record !== null) answers.push(record);
    }
    return { answers: answers.slice(0, limit), additionals: [], exists: true };
  }

  #answer(message: Buffer): Buffer | null {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return null;
    }
    const questions = query.questions ?? [];
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    let rcode = 'NOERROR';
    let authority: Answer[] = [];
    const question = questions[0];
    if (question === undefined) {
      rcode = 'FORMERR';
    } else if (parseName(question.name) === null) {
      // No recursors are configured: the agent cannot answer outside .consul.
      rcode = 'SERVFAIL';
    } else {
      const result = this.#resolve(question);
      answers.push(...result.answers);
      additionals.push(...result.additionals);
      if (!result.exists) rcode = 'NXDOMAIN';
      if (answers.length === 0) authority = [SOA];
    }
    const rcodeNumber: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3 };
    const recursionDesired = query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
    return dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | recursionDesired | (rcodeNumber[rcode] ?? 0),
      questions,
      answers,
      authorities: authority,
      additionals,
    });
  }
}
