// A loopback HTTP server that answers every request with what the test last set: a status, a body and
// its content type, or no answer at all (the client's timeout decides). Adapter tests use it to make
// an HTTP API (Consul, Route53) fail in one exact way; `closed` is an address nothing listens on.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from './processes.ts';

export interface ScriptedAnswer {
  status: number;
  body: string;
  /** Sent as Content-Type when given. */
  type?: string;
  /** Never answer. */
  hang?: true;
}

export interface ScriptedHttpServer {
  /** `127.0.0.1:port`. */
  readonly address: string;
  /** A loopback `host:port` where nothing listens (connection refused). */
  readonly closed: string;
  answer: ScriptedAnswer;
  close(): Promise<void>;
}

export async function startScriptedHttpServer(): Promise<ScriptedHttpServer> {
  const server = createServer((request, response) => {
    request.resume();
    const { answer } = scripted;
    if (answer.hang === true) return;
    response.writeHead(answer.status, answer.type === undefined ? {} : { 'content-type': answer.type }).end(answer.body);
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const scripted: ScriptedHttpServer = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    closed: `127.0.0.1:${await freePort()}`,
    answer: { status: 200, body: '' },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return scripted;
}
