// Loads a Dataset into MySQL in a few bulk statements: the demo data for a fresh database, and the
// large generated catalogs of tests and the benchmark.
import type mysql from 'mysql2/promise';
import type { Dataset } from './dataset.ts';

const CHUNK = 1000;

export async function seed(pool: mysql.Pool, dataset: Dataset): Promise<void> {
  const at = (ms: number | null) => (ms === null ? null : new Date(ms));
  await insertRows(
    pool,
    'device_classes',
    ['name', 'max_height', 'protocols', 'default_protocol', 'enabled'],
    dataset.deviceClasses.map((d) => [d.name, d.maxHeight, d.protocols.join(','), d.defaultProtocol, d.enabled]),
  );
  await insertRows(
    pool,
    'contents',
    ['id', 'title'],
    dataset.contents.map((c) => [c.id, c.title]),
  );
  await insertRows(
    pool,
    'renditions',
    ['content_id', 'protocol', 'height', 'path'],
    dataset.contents.flatMap((c) => c.renditions.map((r) => [c.id, r.protocol, r.height, r.path])),
  );
  await insertRows(
    pool,
    'purchases',
    ['user_id', 'content_id', 'kind', 'max_height', 'expires_at'],
    dataset.purchases.map((p) => [p.userId, p.contentId, p.kind, p.maxHeight, at(p.expiresAt)]),
  );
  await insertRows(
    pool,
    'subscription_plans',
    ['id', 'name', 'max_height', 'devices'],
    dataset.plans.map((p) => [p.id, p.name, p.maxHeight, p.devices === null ? null : p.devices.join(',')]),
  );
  await insertRows(
    pool,
    'plan_contents',
    ['plan_id', 'content_id'],
    dataset.plans.flatMap((p) => p.contentIds.map((id) => [p.id, id])),
  );
  await insertRows(
    pool,
    'subscriptions',
    ['user_id', 'plan_id', 'expires_at'],
    dataset.subscriptions.map((s) => [s.userId, s.planId, at(s.expiresAt)]),
  );
}

async function insertRows(pool: mysql.Pool, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (let start = 0; start < rows.length; start += CHUNK) {
    // Table and column names are constants above; every value is a bound parameter.
    await pool.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ?`, [rows.slice(start, start + CHUNK)]);
  }
}
