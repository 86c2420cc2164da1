// The API reaches MySQL over TLS: a real MariaDB that serves TLS with a test CA and refuses every
// plain TCP connection (require_secure_transport), so a play that works proves the API used TLS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { demoDataset } from '../../api/catalog/dataset.ts';
import { createMysqlPool } from '../../api/catalog/mysql-store.ts';
import { ConfigError, parseConfig } from '../../api/config.ts';
import { embeddedDemo } from '../../api/demo/embedded.ts';
import { fetchDeepHealth, statusApartFromLag } from '../../testkit/health.ts';
import { startMariaDb, type MariaDbServer } from '../../testkit/mariadb.ts';
import { freePort, makeTempDir, waitFor } from '../../testkit/processes.ts';
import { createCatalogDatabase, startTestNode, type TestNode } from '../../testkit/service.ts';
import { createTestCa, type TestCa } from '../../testkit/tls.ts';
import { API_MAIN, startStApiProcess } from './st-api-process.ts';

const DATABASE = 'st_catalog';
const SERVICE_NAME = 'mysql.service.consul';
const MIGRATE_CLI = join(import.meta.dirname, '..', '..', 'api', 'catalog', 'migrate-cli.ts');
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

describe('when mysql.host is an address (no servername)', () => {
  // Node checks a certificate against the name it was given, else "localhost": mysql2 gives none for
  // an address, so without st-api's own socket a certificate for DNS:localhost would pass for any address.
  const serverWith = async (label: string, names: string[]): Promise<MariaDbServer> => {
    const files = ca.server(label, names, { loopback: false });
    return startMariaDb({ tls: { caFile: ca.caFile, certFile: files.certFile, keyFile: files.keyFile } });
  };

  it('then a certificate that names the address is accepted, and one that names only localhost is refused', async () => {
    const [byAddress, byLocalhost] = await Promise.all([
      serverWith('mariadb-ip-only', ['127.0.0.1']),
      serverWith('mariadb-localhost-only', ['localhost']),
    ]);
    try {
      await createCatalogDatabase(byAddress, DATABASE, demoDataset(Date.now()));
      const accepted = await startTestNode({ mysql: { server: byAddress, database: DATABASE } });
      try {
        const played = await play(accepted);
        assert.equal(played.status, 200, JSON.stringify(played.body));
      } finally {
        await accepted.close();
      }
      const refused = await startTestNode({ mysql: { server: byLocalhost, database: DATABASE } });
      try {
        assert.match((await fetchDeepHealth(refused.baseUrl)).body, /^fail .*mysql=error\(tls:certificate-name-mismatch\) /);
      } finally {
        await refused.close();
      }
    } finally {
      await Promise.all([byAddress.stop(), byLocalhost.stop()]);
    }
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

describe('when mysql.tls is set and the server offers no TLS', () => {
  it('then st-api never falls back to plain: /health/deep says so, plays are 503', async () => {
    const plainServer = await startMariaDb();
    try {
      const { host, port, user, password } = plainServer.connectionOptions();
      const node = await startTestNode({ overrides: { mysql: { host, port, user, password, database: 'mysql', tls: { ca: ca.caFile } } } });
      try {
        assert.match((await fetchDeepHealth(node.baseUrl)).body, /^fail .*mysql=error\(tls:not-offered-by-server\) /);
        const played = await play(node);
        assert.equal(played.status, 503);
        assert.equal(played.body.code, 'DEPENDENCY_UNAVAILABLE');
      } finally {
        await node.close();
      }
    } finally {
      await plainServer.stop();
    }
  });
});

describe('when the server is down and a servername is set (the socket is opened by st-api, not mysql2)', () => {
  it('then the failure is the connection refused, plays are 503, and the node stays up', async () => {
    const closedPort = await freePort();
    const node = await startTestNode({
      overrides: { mysql: { ...mysqlSection({ ca: ca.caFile, servername: SERVICE_NAME }), port: closedPort } },
    });
    try {
      assert.match((await fetchDeepHealth(node.baseUrl)).body, /^fail .*mysql=error\(econnrefused\) /);
      assert.equal((await play(node)).status, 503);
      assert.equal((await fetch(`${node.baseUrl}/health/live`)).status, 200);
    } finally {
      await node.close();
    }
  });
});

describe('when db:migrate runs against a TLS-only server', () => {
  it('then it applies the migrations and loads the demo data over TLS', async () => {
    const database = 'st_migrated';
    const admin = await mysql.createConnection(mariadb.connectionOptions());
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    const configFile = join(dir, 'migrate.json');
    writeFileSync(
      configFile,
      JSON.stringify({ ...embeddedDemo().rawConfig, mysql: { ...mysqlSection({ ca: ca.caFile, servername: SERVICE_NAME }), database } }),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', MIGRATE_CLI, '--demo-data'], {
      env: { ...process.env, ST_API_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, output);
    assert.match(output, /demo data loaded/);
    const check = await mysql.createConnection({ ...mariadb.connectionOptions(), database });
    try {
      const [rows] = await check.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM contents');
      assert.ok(Number(rows[0]?.n) > 0);
    } finally {
      await check.end();
    }
  });
});

describe('when the account requires a client certificate (mutual TLS)', () => {
  it('then the node plays with mysql.tls.cert and key, and is refused without them', async () => {
    const account = { user: 'st_x509', password: randomBytes(12).toString('hex') };
    const admin = await mysql.createConnection(mariadb.connectionOptions());
    try {
      await admin.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ? REQUIRE X509`, [account.user, account.password]);
      await admin.query(`GRANT SELECT ON ${DATABASE}.* TO ?@'127.0.0.1'`, [account.user]);
    } finally {
      await admin.end();
    }
    const client = ca.client('st-api-client', account.user);
    const withCertificate = await startTestNode({
      overrides: { mysql: mysqlSection({ ca: ca.caFile, cert: client.certFile, key: client.keyFile }, account) },
    });
    try {
      const played = await play(withCertificate);
      assert.equal(played.status, 200, JSON.stringify(played.body));
    } finally {
      await withCertificate.close();
    }
    const without = await startTestNode({ overrides: { mysql: mysqlSection({ ca: ca.caFile }, account) } });
    try {
      assert.equal((await play(without)).status, 503);
      assert.match((await fetchDeepHealth(without.baseUrl)).body, /^fail .*mysql=error\(er_access_denied_error\) /);
    } finally {
      await without.close();
    }
  });
});

describe('when mysql.tls names files that are missing or wrong', () => {
  const problems = (tls: Record<string, unknown>): string[] => {
    try {
      parseConfig({ ...embeddedDemo().rawConfig, mysql: mysqlSection(tls) }, {});
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    assert.fail('the configuration was accepted');
  };

  it('then every problem names the field and the file, never a key', () => {
    const missing = join(dir, 'no-such-ca.pem');
    assert.deepEqual(problems({ ca: missing }), [`mysql.tls.ca: cannot read ${missing} (ENOENT)`]);
    const client = ca.client('mismatched', 'st');
    const other = ca.client('other', 'st');
    assert.deepEqual(problems({ ca: ca.caFile, cert: client.certFile, key: other.keyFile }), [
      `mysql.tls.key: ${other.keyFile} is not the key of the certificate in ${client.certFile}`,
    ]);
    assert.deepEqual(problems({ ca: client.keyFile }), [`mysql.tls.ca: ${client.keyFile} holds no PEM certificate`]);
    assert.deepEqual(problems({ ca: ca.caFile, cert: client.certFile }), ['mysql.tls.key: give both cert and key, or neither']);
    assert.deepEqual(problems({ ca: ca.caFile, servername: '10.0.0.5' }), [
      'mysql.tls.servername: must be a DNS name, e.g. "mysql.service.consul" (an address is checked as host already)',
    ]);
    // {"file": …} puts a file's content where a path belongs: refused without echoing it.
    const keyPem = readFileSync(client.keyFile, 'utf8');
    const refused = problems({ ca: ca.caFile, cert: client.certFile, key: keyPem });
    assert.deepEqual(refused, ['mysql.tls.key: must be the path of a PEM file, not its content']);
  });

  it('then st-api exits 78 naming the file it cannot read', async () => {
    const configFile = join(dir, 'unreadable-ca.json');
    const missing = join(dir, 'missing-ca.pem');
    writeFileSync(configFile, JSON.stringify({ ...embeddedDemo().rawConfig, mysql: mysqlSection({ ca: missing }) }));
    const child = spawn(process.execPath, ['--import', 'tsx', API_MAIN], {
      env: { ...process.env, ST_API_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 78);
    assert.ok(output.includes(`mysql.tls.ca: cannot read ${missing} (ENOENT)`), output);
  });

  it('then a private key that its group may read (owned by a user, not root) is warned about at start-up, a private one is not', async () => {
    const client = ca.client('loose-key', 'st');
    chmodSync(client.keyFile, 0o640);
    chownSync(client.keyFile, 12345, 12345);
    const tls = { ca: ca.caFile, cert: client.certFile, key: client.keyFile };
    const loose = await startStApiProcess({ mysql: mysqlSection(tls) });
    try {
      const warning = await waitFor(() => /^\{.*"level":40.*\}$/m.exec(loose.output())?.[0], {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'the key file warning',
      });
      assert.equal((JSON.parse(warning) as { file?: string }).file, client.keyFile);
      assert.ok(warning.includes(`"msg":"secret file ${client.keyFile} has mode 0640 (owner uid 12345): its group can read it;`), warning);
      assert.equal((JSON.parse(warning) as { mode?: string }).mode, '0640');
    } finally {
      await loose.kill();
    }
    chmodSync(client.keyFile, 0o600);
    const tight = await startStApiProcess({ mysql: mysqlSection(tls) });
    try {
      // It has logged "listening", after the point where it would have warned.
      assert.doesNotMatch(tight.output(), /"level":40/);
    } finally {
      await tight.kill();
    }
  });
});

function mysqlSection(tls: Record<string, unknown>, account?: { user: string; password: string }): Record<string, unknown> {
  const { host, port, user, password } = mariadb.connectionOptions();
  return { host, port, ...(account ?? { user, password }), database: DATABASE, tls };
}
