// Applies catalog/migrations/*.sql in name order, once each, recording them in schema_migrations.
// st-api itself never writes to MySQL; this runs from deployment tooling and tests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { MysqlSettings } from './mysql-store.ts';
import { mysql2Transport } from './mysql-tls.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export async function migrate(settings: Omit<MysqlSettings, 'poolSize' | 'queryTimeoutMs'>): Promise<string[]> {
  const connection = await mysql.createConnection({
    ...mysql2Transport(settings.host, settings.port, settings.tls),
    user: settings.user,
    password: settings.password,
    database: settings.database,
    connectTimeout: settings.connectTimeoutMs,
    // Only this connection runs multi-statement files; the service's pool never does.
    multipleStatements: true,
  });
  try {
    await connection.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(128) NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    );
    const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => String(row.version)));
    const pending = readdirSync(MIGRATIONS_DIR)
      .filter((file) => file.endsWith('.sql') && !applied.has(file))
      .sort();
    for (const file of pending) {
      await connection.query(readFileSync(join(MIGRATIONS_DIR, file), 'utf8'));
      await connection.execute('INSERT INTO schema_migrations (version) VALUES (?)', [file]);
    }
    return pending;
  } finally {
    await connection.end();
  }
}
