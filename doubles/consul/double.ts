// Consul double: one in-process "servers + agents" for datacenter dc1, for
// tests and for anyone who needs something that speaks Consul on loopback.
// Production code talks to it with the `consul` npm client or plain HTTP, and
// to its DNS with any resolver; it cannot tell it from an agent.
//
//   const consul = await startConsulDouble({ checkUpdateIntervalMs: 0 });
//   consul.httpAddr        // "http://127.0.0.1:<port>": the agent of node consul.serverNode
//   consul.httpsAddr       // "https://127.0.0.1:<port>" too, when started with `tls` (every agent serves both)
//   consul.dnsPort         // UDP port on 127.0.0.1 for *.service.consul
//   const n1 = await consul.addNode('api-node-1', '10.0.1.11');
//   n1.agentAddr           // that node's own local agent (its own port)
//   consul.setNodeCheck('api-node-1', 'critical')            // serfHealth
//   const w = consul.watch({ node: 'api-node-1', type: 'service', service: 'st-api',
//                            args: [process.execPath, 'handler.mjs'] });
//   consul.reload()        // every watch plan restarts and fires again
//   consul.invocations()   // handler runs: index, stdin, exit code, output, duration
//   consul.callLog()       // every HTTP call: agent, method, path, query, token, status
//   await consul.stop()    // closes everything and kills running handlers
//
// Every node gets a passing `serfHealth` check. Defaults are Consul's own
// (check_update_interval 5m, blocking wait 5m/max 10m, session TTL ×2,
// HTTP check start stagger, DeregisterCriticalServiceAfter ≥1m reaped every
// 30s); tests shorten them through the options.
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Agent, type AgentOptions } from './agent.ts';
import { ConsulDns } from './dns.ts';
import { createApiHandler, type CallLogEntry } from './http-api.ts';
import { ConsulStore, emptyDefinition, type CheckStatus } from './store.ts';
import { WatchHandle, type Invocation, type WatchSpec } from './watch.ts';

export type { CallLogEntry } from './http-api.ts';
export type { Invocation, WatchSpec } from './watch.ts';
export type { CheckStatus } from './store.ts';
export { WatchHandle } from './watch.ts';

export interface ConsulDoubleOptions {
  /** HTTP port of the server node's agent; 0 (default) picks a free one. */
  readonly port?: number;
  /** UDP DNS port; 0 (default) picks a free one. */
  readonly dnsPort?: number;
  /** Name of the node whose agent answers on httpAddr (default "consul-server-1", address 127.0.0.1). */
  readonly serverNode?: string;
  /** First Raft index (default 1); a large one makes index handling visible. */
  readonly initialIndex?: number;
  /** check_update_interval (default 5m): output-only check changes reach the catalog this late. 0 = at once. */
  readonly checkUpdateIntervalMs?: number;
  /** Random delay up to Interval before an HTTP check's first run (default true). */
  readonly checkStagger?: boolean;
  /** DeregisterCriticalServiceAfter floor (default 1m) and reaper period (default 30s). */
  readonly deregisterMinimumMs?: number;
  readonly reapIntervalMs?: number;
  /** Blocking queries: wait when `?wait` is absent (default 5m) and its cap (default 10m). */
  readonly defaultWaitMs?: number;
  readonly maxWaitMs?: number;
  /** Sessions are reaped at TTL × this (default 2, as Consul's servers). */
  readonly sessionTtlMultiplier?: number;
  /** Agents add lan_ipv4/wan_ipv4 service tagged addresses for an IP Service.Address (default true). */
  readonly defaultServiceTaggedAddresses?: boolean;
  readonly dns?: {
    /** dns_config.only_passing (default false: only critical instances are dropped). */
    readonly onlyPassing?: boolean;
    /** dns_config.udp_answer_limit (default 3). */
    readonly udpAnswerLimit?: number;
  };
  /** `?wait=` used by watch plans' blocking queries (default 5m). */
  readonly watchQueryWaitMs?: number;
  /** Scales the watch plans' 5s × failures² retry back-off (default 1). */
  readonly watchErrorBackoffScale?: number;
  /** How many HTTP calls callLog() keeps (default 10000, oldest dropped). */
  readonly callLogLimit?: number;
  /** Every agent also serves its API over HTTPS (Consul's `ports.https`, `tls.https`). */
  readonly tls?: ConsulDoubleTls;
  /** HTTPS port of the server node's agent (with `tls`); 0 (default) picks a free one. */
  readonly httpsPort?: number;
  /** Every agent's `enable_agent_tls_for_checks` with this CA (PEM); default off (system roots). */
  readonly tlsForChecks?: { readonly caPem: string };
}

/**
 * An agent's `tls.defaults`/`tls.https` block, PEM text rather than file names. As in Consul, the
 * HTTP port stays open beside HTTPS (production disables it with `ports.http = -1`), and the agent's
 * own watches use it (agent.go reloadWatches prefers the HTTP address).
 */
export interface ConsulDoubleTls {
  /** `cert_file`: the chain the agent presents. */
  readonly cert: string;
  /** `key_file`. */
  readonly key: string;
  /** `ca_file`: the CA(s) client certificates must chain to; required by verifyIncoming. */
  readonly ca?: string;
  /** `verify_incoming`: HTTPS clients must present a certificate signed by `ca` (the handshake fails otherwise). */
  readonly verifyIncoming?: boolean;
}

export interface NodeHandle {
  readonly name: string;
  readonly address: string;
  /** http://127.0.0.1:<port> of this node's own agent. */
  readonly agentAddr: string;
  readonly port: number;
  /** https://127.0.0.1:<port> of the same agent, when the double serves TLS. */
  readonly httpsAddr: string | undefined;
  readonly httpsPort: number | undefined;
}

export interface AddNodeOptions {
  readonly meta?: Readonly<Record<string, string>>;
  /** Port for this node's agent; 0 (default) picks a free one. */
  readonly port?: number;
  /** HTTPS port for this node's agent, when the double serves TLS; 0 (default) picks a free one. */
  readonly httpsPort?: number;
}

export interface NodeWatchSpec extends WatchSpec {
  /** Node whose agent runs the watch (default: the server node). */
  readonly node?: string;
}

export interface ConsulDouble {
  readonly httpAddr: string;
  /** The server node's agent over HTTPS, when started with `tls`. */
  readonly httpsAddr: string | undefined;
  readonly dnsPort: number;
  readonly serverNode: string;
  /** The current Raft index. */
  index(): number;
  addNode(name: string, address: string, options?: AddNodeOptions): Promise<NodeHandle>;
  node(name: string): NodeHandle;
  /** Deregisters the node with its services and checks, invalidating its sessions; closes its agent. */
  removeNode(name: string): Promise<void>;
  /** Sets a node's serfHealth (e.g. 'critical' for a node that left or is unreachable). */
  setNodeCheck(node: string, status: CheckStatus, output?: string): void;
  watch(spec: NodeWatchSpec): WatchHandle;
  /** Agent reload: restarts every watch plan (of one node, or all). */
  reload(node?: string): void;
  invocations(): readonly Invocation[];
  callLog(): readonly CallLogEntry[];
  clearLogs(): void;
  stop(): Promise<void>;
}

interface LiveNode {
  readonly handle: NodeHandle;
  readonly agent: Agent;
  readonly server: Server;
  readonly httpsServer: Server | undefined;
  readonly watches: Set<WatchHandle>;
}

const SERF_OUTPUT: Record<CheckStatus, string> = {
  passing: 'Agent alive and reachable',
  warning: 'Agent alive and reachable',
  critical: 'Agent not live or unreachable',
};

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('consul double: no TCP address');
  return address.port;
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive clients (the consul npm client keeps sockets open) would hold close() forever.
  server.closeAllConnections();
  await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())]);
}

/** Consul's HTTPS listener: TLS 1.2 or later (tls.defaults.tls_min_version's default), client certificates when verify_incoming. */
function tlsServer(tls: ConsulDoubleTls, handler: RequestListener): Server {
  return createHttpsServer(
    {
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.verifyIncoming === true ? { requestCert: true, rejectUnauthorized: true } : {}),
    },
    handler,
  );
}

async function closeNode(node: LiveNode): Promise<void> {
  await Promise.all([closeServer(node.server), ...(node.httpsServer === undefined ? [] : [closeServer(node.httpsServer)])]);
}

export async function startConsulDouble(options: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
  const store = new ConsulStore({
    ...(options.initialIndex === undefined ? {} : { initialIndex: options.initialIndex }),
    ...(options.sessionTtlMultiplier === undefined ? {} : { sessionTtlMultiplier: options.sessionTtlMultiplier }),
  });
  const agentOptions: AgentOptions = {
    checkUpdateIntervalMs: options.checkUpdateIntervalMs ?? 300_000,
    checkStagger: options.checkStagger ?? true,
    deregisterMinimumMs: options.deregisterMinimumMs ?? 60_000,
    reapIntervalMs: options.reapIntervalMs ?? 30_000,
    defaultServiceTaggedAddresses: options.defaultServiceTaggedAddresses ?? true,
    ...(options.tlsForChecks === undefined ? {} : { tlsForChecks: options.tlsForChecks }),
  };
  const serverNode = options.serverNode ?? 'consul-server-1';
  const leader = '127.0.0.1:8300';
  const calls: CallLogEntry[] = [];
  const callLogLimit = Math.max(1, options.callLogLimit ?? 10_000);
  const invocations: Invocation[] = [];
  const nodes = new Map<string, LiveNode>();
  let stopped = false;

  const log = (entry: CallLogEntry): void => {
    calls.push(entry);
    if (calls.length > callLogLimit) calls.splice(0, calls.length - callLogLimit);
  };

  const addNode = async (name: string, address: string, nodeOptions: AddNodeOptions = {}): Promise<NodeHandle> => {
    if (stopped) throw new Error('consul double is stopped');
    if (nodes.has(name)) throw new Error(`node ${name} already exists`);
    store.upsertNode(name, address, { ...nodeOptions.meta });
    store.putCheck({
      node: name,
      checkId: 'serfHealth',
      name: 'Serf Health Status',
      status: 'passing',
      output: SERF_OUTPUT.passing,
      localStatus: 'passing',
      localOutput: SERF_OUTPUT.passing,
      notes: '',
      serviceId: '',
      serviceName: '',
      type: '',
      definition: emptyDefinition(),
    });
    const agent = new Agent(name, store, agentOptions);
    const handler = createApiHandler({
      store,
      agent,
      log,
      leader,
      defaultWaitMs: options.defaultWaitMs ?? 300_000,
      maxWaitMs: options.maxWaitMs ?? 600_000,
    });
    const server = createServer(handler);
    const httpsServer = options.tls === undefined ? undefined : tlsServer(options.tls, handler);
    let port: number;
    let httpsPort: number | undefined;
    try {
      port = await listen(server, nodeOptions.port ?? 0);
      if (httpsServer !== undefined) httpsPort = await listen(httpsServer, nodeOptions.httpsPort ?? 0);
    } catch (error) {
      agent.stop();
      store.removeNode(name);
      if (server.listening) await closeServer(server);
      throw error;
    }
    const handle: NodeHandle = {
      name,
      address,
      agentAddr: `http://127.0.0.1:${port}`,
      port,
      httpsAddr: httpsPort === undefined ? undefined : `https://127.0.0.1:${httpsPort}`,
      httpsPort,
    };
    nodes.set(name, { handle, agent, server, httpsServer, watches: new Set() });
    return handle;
  };

  const live = (name: string): LiveNode => {
    const found = nodes.get(name);
    if (found === undefined) throw new Error(`consul double: unknown node ${name}`);
    return found;
  };

  if (options.tls?.verifyIncoming === true && options.tls.ca === undefined) throw new Error('consul double: verifyIncoming needs tls.ca');
  const server = await addNode(serverNode, '127.0.0.1', { port: options.port ?? 0, httpsPort: options.httpsPort ?? 0 });
  // Consul servers register themselves as service "consul".
  live(serverNode).agent.registerService({ Name: 'consul', ID: 'consul', Port: 8300 }, false);

  const dns = new ConsulDns(store, {
    onlyPassing: options.dns?.onlyPassing ?? false,
    udpAnswerLimit: options.dns?.udpAnswerLimit ?? 3,
  });
  let dnsPort: number;
  try {
    dnsPort = await dns.listen(options.dnsPort ?? 0);
  } catch (error) {
    live(serverNode).agent.stop();
    await closeNode(live(serverNode));
    throw error;
  }

  return {
    httpAddr: server.agentAddr,
    httpsAddr: server.httpsAddr,
    dnsPort,
    serverNode,
    index: () => store.index,
    addNode,
    node: (name) => live(name).handle,
    async removeNode(name) {
      const node = live(name);
      nodes.delete(name);
      await Promise.all([...node.watches].map((w) => w.stop()));
      node.agent.stop();
      store.removeNode(name);
      await closeNode(node);
    },
    setNodeCheck(name, status, output) {
      const check = store.getCheck(live(name).handle.name, 'serfHealth');
      if (check === undefined) throw new Error(`node ${name} has no serfHealth check`);
      check.localStatus = status;
      check.localOutput = output ?? SERF_OUTPUT[status];
      store.syncCheck(name, 'serfHealth', status, output ?? SERF_OUTPUT[status]);
    },
    watch(spec) {
      const node = live(spec.node ?? serverNode);
      const handle = new WatchHandle(spec, {
        agentAddr: node.handle.agentAddr,
        node: node.handle.name,
        queryWaitMs: options.watchQueryWaitMs ?? 300_000,
        errorBackoffScale: options.watchErrorBackoffScale ?? 1,
        record: (invocation) => invocations.push(invocation),
      });
      node.watches.add(handle);
      return handle;
    },
    reload(name) {
      const targets = name === undefined ? [...nodes.values()] : [live(name)];
      for (const node of targets) for (const watch of node.watches) watch.reload();
    },
    invocations: () => [...invocations],
    callLog: () => [...calls],
    clearLogs() {
      calls.length = 0;
      invocations.length = 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const all = [...nodes.values()];
      nodes.clear();
      await Promise.all(all.flatMap((n) => [...n.watches].map((w) => w.stop())));
      for (const node of all) node.agent.stop();
      store.close();
      await Promise.all([...all.map(closeNode), dns.close()]);
    },
  };
}
