// HTTP checks really run against a local server; TTL checks really expire.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { freePort, waitFor } from '../../testkit/processes.ts';
import { startConsulDouble, type ConsulDouble, type NodeHandle } from './double.ts';

type Mode = 200 | 429 | 503 | 'hang';

interface AgentCheck {
  Status: string;
  Output: string;
}

async function agentCheck(node: NodeHandle, id: string): Promise<AgentCheck | undefined> {
  const checks = (await (await fetch(`${node.agentAddr}/v1/agent/checks`)).json()) as Record<string, AgentCheck>;
  return checks[id];
}

async function catalogCheck(consul: ConsulDouble, service: string, id: string): Promise<AgentCheck | undefined> {
  const checks = (await (await fetch(`${consul.httpAddr}/v1/health/checks/${service}`)).json()) as (AgentCheck & { CheckID: string })[];
  return checks.find((c) => c.CheckID === id);
}

async function register(node: NodeHandle, body: unknown): Promise<void> {
  const res = await fetch(`${node.agentAddr}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

describe('consul double checks', () => {
  let target: Server;
  let targetUrl: string;
  let mode: Mode = 200;
  let body = 'ok';
  let hits = 0;
  let lastUserAgent = '';
  let consul: ConsulDouble;
  let node: NodeHandle;

  before(async () => {
    target = createServer((req, res) => {
      hits++;
      lastUserAgent = req.headers['user-agent'] ?? '';
      if (mode === 'hang') return;
      res.writeHead(mode, { 'Content-Type': 'text/plain' });
      res.end(body);
    });
    const port = await freePort();
    await new Promise<void>((resolve) => target.listen(port, '127.0.0.1', resolve));
    targetUrl = `http://127.0.0.1:${port}/health/deep`;
    consul = await startConsulDouble({ checkUpdateIntervalMs: 0, checkStagger: false });
    node = await consul.addNode('api-node-1', '127.0.0.1');
  });
  after(async () => {
    await consul.stop();
    target.closeAllConnections();
    await new Promise<void>((resolve) => target.close(() => resolve()));
  });

  it('when an HTTP check is registered, then it starts critical and turns passing with the Go-style output', async () => {
    mode = 200;
    body = 'ok mysql=ok(1ms)';
    await register(node, {
      ID: 'web-1',
      Name: 'web',
      Port: 1,
      Check: { CheckID: 'web-1:deep', HTTP: targetUrl, Interval: '100ms', Timeout: '300ms' },
    });
    const initial = await agentCheck(node, 'web-1:deep');
    assert.equal(initial?.Status, 'critical');
    const passing = await waitFor(
      async () => {
        const c = await catalogCheck(consul, 'web', 'web-1:deep');
        return c?.Status === 'passing' ? c : null;
      },
      { timeoutMs: 5000, what: 'the check to pass' },
    );
    assert.equal(passing.Output, `HTTP GET ${targetUrl}: 200 OK Output: ok mysql=ok(1ms)`);
    assert.equal(lastUserAgent, 'Consul Health Check');
  });

  it('when the target answers 429, then the check is warning; 503 makes it critical with the body', async () => {
    mode = 429;
    body = 'warn redis=timeout';
    await waitFor(async () => (await catalogCheck(consul, 'web', 'web-1:deep'))?.Status === 'warning', {
      timeoutMs: 5000,
      what: 'warning',
    });
    mode = 503;
    body = 'fail mysql=timeout(1000ms)';
    const critical = await waitFor(
      async () => {
        const c = await catalogCheck(consul, 'web', 'web-1:deep');
        return c?.Status === 'critical' ? c : null;
      },
      { timeoutMs: 5000, what: 'critical' },
    );
    assert.equal(critical.Output, `HTTP GET ${targetUrl}: 503 Service Unavailable Output: fail mysql=timeout(1000ms)`);
  });

  it('when the body is larger than OutputMaxSize, then only its last bytes are kept', async () => {
    mode = 200;
    body = `${'a'.repeat(5000)}END`;
    const check = await waitFor(
      async () => {
        const c = await agentCheck(node, 'web-1:deep');
        return c?.Status === 'passing' && c.Output.endsWith('END') ? c : null;
      },
      { timeoutMs: 5000, what: 'a long output' },
    );
    const kept = check.Output.slice(check.Output.indexOf('Output: ') + 'Output: '.length);
    assert.equal(kept.length, 4096);
  });

  it('when the target hangs past Timeout, then the check is critical with the Go timeout error', async () => {
    mode = 'hang';
    const check = await waitFor(
      async () => {
        const c = await agentCheck(node, 'web-1:deep');
        return c?.Status === 'critical' ? c : null;
      },
      { timeoutMs: 5000, what: 'a timeout' },
    );
    assert.equal(check.Output, `Get "${targetUrl}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`);
    target.closeAllConnections();
  });

  it('when nothing listens on the URL, then the check is critical with the transport error', async () => {
    const port = await freePort();
    await register(node, {
      ID: 'dead-1',
      Name: 'dead',
      Port: 1,
      Check: { CheckID: 'dead', HTTP: `http://127.0.0.1:${port}/`, Interval: '100ms', Status: 'passing' },
    });
    const check = await waitFor(
      async () => {
        const c = await agentCheck(node, 'dead');
        return c?.Status === 'critical' ? c : null;
      },
      { timeoutMs: 5000, what: 'connection refused' },
    );
    assert.equal(check.Output, `Get "http://127.0.0.1:${port}/": dial tcp 127.0.0.1:${port}: connect: connection refused`);
  });

  it('when SuccessBeforePassing and FailuresBeforeCritical are set, then the status changes only after that many results', async () => {
    mode = 200;
    await register(node, {
      ID: 'slow-1',
      Name: 'slow',
      Port: 1,
      Check: { CheckID: 'slow', HTTP: targetUrl, Interval: '150ms', Timeout: '1s', SuccessBeforePassing: 3, FailuresBeforeCritical: 3 },
    });
    const startHits = hits;
    await waitFor(async () => (await agentCheck(node, 'slow'))?.Status === 'passing', { timeoutMs: 5000, what: 'passing' });
    assert.ok(hits - startHits >= 3, `passing after ${hits - startHits} probes`);
    mode = 503;
    const failStart = hits;
    await waitFor(async () => (await agentCheck(node, 'slow'))?.Status === 'critical', { timeoutMs: 5000, what: 'critical' });
    assert.ok(hits - failStart >= 3, `critical after ${hits - failStart} probes`);
  });

  it('when a TTL check is not refreshed, then it expires to critical with the last output', async () => {
    await register(node, { ID: 'ttl-1', Name: 'ttl', Port: 1, Check: { CheckID: 'ttl', TTL: '300ms' } });
    await fetch(`${node.agentAddr}/v1/agent/check/pass/ttl?note=${encodeURIComponent('all good')}`, { method: 'PUT' });
    assert.equal((await agentCheck(node, 'ttl'))?.Status, 'passing');
    const expired = await waitFor(
      async () => {
        const c = await agentCheck(node, 'ttl');
        return c?.Status === 'critical' ? c : null;
      },
      { timeoutMs: 3000, what: 'TTL expiry' },
    );
    assert.equal(expired.Output, 'TTL expired (last output before timeout follows): all good');
  });
});

describe('consul double check output sync', () => {
  it('when only the output changes, then the catalog sees it after check_update_interval while the agent sees it at once', async () => {
    const consul = await startConsulDouble({ checkUpdateIntervalMs: 400 });
    try {
      const node = await consul.addNode('n1', '127.0.0.1');
      await register(node, { ID: 's-1', Name: 's', Port: 1, Check: { CheckID: 'c', TTL: '30s' } });
      await fetch(`${node.agentAddr}/v1/agent/check/pass/c?note=one`, { method: 'PUT' });
      assert.equal((await catalogCheck(consul, 's', 'c'))?.Output, 'one', 'a status change syncs at once');
      await fetch(`${node.agentAddr}/v1/agent/check/pass/c?note=two`, { method: 'PUT' });
      assert.equal((await agentCheck(node, 'c'))?.Output, 'two');
      assert.equal((await catalogCheck(consul, 's', 'c'))?.Output, 'one');
      await waitFor(async () => (await catalogCheck(consul, 's', 'c'))?.Output === 'two', { timeoutMs: 3000, what: 'the deferred sync' });
    } finally {
      await consul.stop();
    }
  });

  it('when a critical service has DeregisterCriticalServiceAfter, then the reaper removes it', async () => {
    const consul = await startConsulDouble({ checkUpdateIntervalMs: 0, deregisterMinimumMs: 0, reapIntervalMs: 50 });
    try {
      const node = await consul.addNode('n1', '127.0.0.1');
      await register(node, { ID: 's-1', Name: 's', Port: 1, Check: { CheckID: 'c', TTL: '30s', DeregisterCriticalServiceAfter: '200ms' } });
      await waitFor(async () => ((await (await fetch(`${consul.httpAddr}/v1/catalog/service/s`)).json()) as unknown[]).length === 0, {
        timeoutMs: 3000,
        what: 'the reaper',
      });
    } finally {
      await consul.stop();
    }
  });
});
