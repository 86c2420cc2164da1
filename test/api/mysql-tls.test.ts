// The API reaches MySQL over TLS: a real MariaDB that serves TLS with a test CA and refuses every
// plain TCP connection (require_secure_transport), so a play that works proves the API used TLS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { createMysqlPool } from '../../api/catalog/mysql-store.ts';
import { parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { makeTempDir } from '../../testkit/processes.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa, type TestCa } from '../../testkit/tls.ts';

const DATABASE = 'st_catalog';
const SERVICE_NAME = 'mysql.service.consul';
let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let mariadb: MariaDbServer;

before(async () => {
  dir = await makeTempDir('st-mysql-tls');
  ca = createTestCa(dir);
  otherCa = createTestCa(dir, 'another CA');
  const serverFiles = ca.server('mariadb', [SERVICE_NAME]);
  mariadb = await startMariaDb({ tls: { caFile: ca.caFile, certFile: serverFiles.certFile, keyFile: serverFiles.keyFile } });
  await createCatalogDatabase(mariadb, DATABASE, demoDataset(Date.now()));
});

after(async () => {
  await mariadb.stop();
});

async function withNode<T>(tls: Record<string, unknown>, use: (node: TestNode) => Promise<T>): Promise<T> {
  const node = await startTestNode({ mysql: { server: mariadb, database: DATABASE, tls } });
  try {
    return await use(node);
  } finally {
    await node.close();
  }
}

async function play(node: TestNode): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await node.play({ contentId: 'tt-demo-0001', device: 'tv' }, node.tokenFor('demo-user'));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('when MariaDB accepts TLS only', () => {
  it('then a plain connection is refused, the same account over TLS is let in (what makes a working play proof of TLS)', async () => {
    const { host, port, user, password } = mariadb.connectionOptions();
    const plain = { host, port, user, password };
    // MariaDB 10.11 answers a refused transport with "Access denied" (ER_ACCESS_DENIED_ERROR).
    await assert.rejects(mysql.createConnection({ ...plain, connectTimeout: 5000 }), /Access denied/);
    const secure = await mysql.createConnection({ ...mariadb.connectionOptions(), connectTimeout: 5000 });
    try {
      const [rows] = await secure.query<RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'require_secure_transport'");
      assert.equal(rows[0]?.Value, 'ON');
    } finally {
      await secure.end();
    }
  });

  it('then the API plays a title over TLS, verified against the CA and the address in the certificate', async () => {
    await withNode({ ca: ca.caFile }, async (node) => {
      const played = await play(node);
      assert.equal(played.status, 200, JSON.stringify(played.body));
      assert.equal(played.body.quality, '2160p');
      const health = await fetchDeepHealth(node.baseUrl);
      assert.equal(statusApartFromLag(health), 200, health.body);
      assert.match(health.body, / mysql=ok\(/);
    });
  });

  it("then the API's pool speaks TLS 1.2 or 1.3 (the server's own view of the session)", async () => {
    const config = parseConfig({ ...embeddedDemo().rawConfig, mysql: mysqlSection({ ca: ca.caFile }) }, {});
    assert.ok(config.mysql !== undefined);
    const pool = createMysqlPool(config.mysql);
    try {
      const [rows] = await pool.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_version'");
      assert.match(String(rows[0]?.Value), /^TLSv1\.[23]$/);
    } finally {
      await pool.end();
    }
  });

  it('then a servername that the certificate names is verified instead of the address, and plays', async () => {
    await withNode({ ca: ca.caFile, servername: SERVICE_NAME }, async (node) => {
      const played = await play(node);
      assert.equal(played.status, 200, JSON.stringify(played.body));
    });
  });
});

describe('when the server cannot be trusted', () => {
  for (const [what, tls, reason] of [
    ['the CA is another one', () => ({ ca: otherCa.caFile }), 'certificate-untrusted'],
    [
      'the certificate does not name the servername',
      () => ({ ca: ca.caFile, servername: 'replica.mysql.service.consul' }),
      'certificate-name-mismatch',
    ],
  ] as const) {
    it(`(${what}) then /health/deep is critical naming the certificate, plays are 503 DEPENDENCY_UNAVAILABLE, and the node stays up`, async () => {
      await withNode(tls(), async (node) => {
        const health = await fetchDeepHealth(node.baseUrl);
        assert.equal(health.status, 503, health.body);
        assert.match(health.body, new RegExp(String.raw`^fail .*mysql=error\(tls:${reason}\) `));
        const played = await play(node);
        assert.equal(played.status, 503);
        assert.equal(played.body.code, 'DEPENDENCY_UNAVAILABLE');
        assert.equal((await fetch(`${node.baseUrl}/health/live`)).status, 200);
      });
    });
  }
});

function mysqlSection(tls: Record<string, unknown>): Record<string, unknown> {
  const { host, port, user, password } = mariadb.connectionOptions();
  return { host, port, user, password, database: DATABASE, tls };
}
