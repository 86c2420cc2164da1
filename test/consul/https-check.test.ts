// Consul's HTTP check of st-api over HTTPS (issue #12): the check in consul/agent/st-api-service.json
// verifies st-api's certificate under tls_server_name with the CA the agent is given
// (enable_agent_tls_for_checks + its tls ca_file). What on-call sees in the check output when that
// is missing or wrong is what Consul's Go client prints.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startConsulDouble, type ConsulDouble, type NodeHandle } from '../../doubles/consul/double.ts';
import { makeTempDir, waitFor } from '../../testkit/processes.ts';
import { startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa } from '../../testkit/tls.ts';
import { CONSUL_DIR, isObject, readJson, serviceRegistrationBody, str, type JsonObject } from './consul-config.ts';

const serviceFile = readJson(join(CONSUL_DIR, 'agent', 'st-api-service.json')) as { service: JsonObject };
const productionCheck = serviceRegistrationBody(serviceFile.service)['Check'];
assert.ok(isObject(productionCheck));
const SERVER_NAME = str(productionCheck['TLSServerName'], 'TLSServerName');

let httpsNode: TestNode;
let plainNode: TestNode;
let withCa: ConsulDouble;
let withoutCa: ConsulDouble;
let agentWithCa: NodeHandle;
let agentWithoutCa: NodeHandle;

before(async () => {
  const ca = createTestCa(await makeTempDir('st-consul-https-check'));
  httpsNode = await startTestNode({ tls: ca.server('st-api', [SERVER_NAME]) });
  plainNode = await startTestNode();
  withCa = await startConsulDouble({ checkStagger: false, checkUpdateIntervalMs: 0, tlsForChecks: { caPem: ca.caPem } });
  withoutCa = await startConsulDouble({ checkStagger: false, checkUpdateIntervalMs: 0 });
  agentWithCa = await withCa.addNode('api-node-1', '127.0.0.1');
  agentWithoutCa = await withoutCa.addNode('api-node-1', '127.0.0.1');
});
after(async () => {
  await Promise.all([withCa?.stop(), withoutCa?.stop()]);
  await Promise.all([httpsNode?.close(), plainNode?.close()]);
});

/** The production check pointed at `baseUrl`, run every 200 ms and judged on one result, with `changes`. */
async function registerCheck(agent: NodeHandle, id: string, baseUrl: string, changes: JsonObject = {}): Promise<void> {
  assert.ok(isObject(productionCheck));
  const url = new URL(str(productionCheck['HTTP'], 'HTTP'));
  url.port = new URL(baseUrl).port;
  url.protocol = new URL(baseUrl).protocol;
  const body = {
    ...productionCheck,
    ID: id,
    Name: id,
    HTTP: url.toString(),
    Interval: '200ms',
    SuccessBeforePassing: 1,
    FailuresBeforeCritical: 1,
    // Starts passing, so that critical can only come from a check run.
    Status: 'passing',
    ...changes,
  };
  delete (body as Record<string, unknown>)['CheckID'];
  const response = await fetch(`${agent.agentAddr}/v1/agent/check/register`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal(response.status, 200, await response.text());
}

async function settled(agent: NodeHandle, id: string, status: 'passing' | 'critical'): Promise<string> {
  return waitFor(
    async () => {
      const checks = (await (await fetch(`${agent.agentAddr}/v1/agent/checks`)).json()) as Record<
        string,
        { Status: string; Output: string }
      >;
      const check = checks[id];
      // A passing check shows a check run's output; the registration's own output is empty.
      return check?.Status === status && check.Output !== '' ? check.Output : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 50, what: `check ${id} to be ${status}` },
  );
}

describe("when Consul's HTTP check reaches st-api over HTTPS", () => {
  it('then with the CA given to the agent and the tls_server_name of the file it passes', async () => {
    await registerCheck(agentWithCa, 'with-ca', httpsNode.baseUrl, { Status: 'critical' });
    const output = await settled(agentWithCa, 'with-ca', 'passing');
    assert.match(output, /^HTTP GET https:\/\/127\.0\.0\.1:\d+\/health\/deep: 200 OK Output: ok node=serving .*certificate=ok\(\d+d\)/);
  });

  it('then an agent without the CA fails it with the x509 error Consul prints', async () => {
    await registerCheck(agentWithoutCa, 'without-ca', httpsNode.baseUrl);
    const output = await settled(agentWithoutCa, 'without-ca', 'critical');
    assert.match(
      output,
      /^Get "https:\/\/127\.0\.0\.1:\d+\/health\/deep": tls: failed to verify certificate: x509: certificate signed by unknown authority$/,
    );
  });

  it('then a tls_server_name the certificate does not carry fails it, naming the names it does carry', async () => {
    await registerCheck(agentWithCa, 'wrong-name', httpsNode.baseUrl, { TLSServerName: 'api.example.net' });
    const output = await settled(agentWithCa, 'wrong-name', 'critical');
    assert.match(
      output,
      new RegExp(
        `^Get "https://127\\.0\\.0\\.1:\\d+/health/deep": tls: failed to verify certificate: x509: certificate is valid for localhost, ${SERVER_NAME.replace(/\./g, '\\.')}, not api\\.example\\.net$`,
      ),
    );
  });

  it('then tls_skip_verify (never in production) passes without the CA, which is why the file sets it false', async () => {
    await registerCheck(agentWithoutCa, 'skip-verify', httpsNode.baseUrl, { TLSSkipVerify: true, Status: 'critical' });
    assert.match(await settled(agentWithoutCa, 'skip-verify', 'passing'), /: 200 OK Output: ok /);
  });

  it('then a node still serving plain HTTP fails the https check with Go’s message for it', async () => {
    await registerCheck(agentWithCa, 'plain-node', plainNode.baseUrl.replace(/^http:/, 'https:'));
    const output = await settled(agentWithCa, 'plain-node', 'critical');
    assert.match(output, /^Get "https:\/\/127\.0\.0\.1:\d+\/health\/deep": http: server gave HTTP response to HTTPS client$/);
  });
});
