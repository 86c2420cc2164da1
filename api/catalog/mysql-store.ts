// The system of record, read through a bounded pool with parameterised statements only.
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { withTimeout } from '../../common/with-timeout.ts';
import { mysql2Transport, type MysqlTls } from './mysql-tls.ts';
import type { Metrics } from '../metrics.ts';
import {
  CatalogUnavailableError,
  type CatalogStore,
  type Content,
  type DeviceClass,
  type PlayData,
  type Protocol,
  type Right,
  type RightKind,
} from './types.ts';

export interface MysqlSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  poolSize: number;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  tls?: MysqlTls | undefined;
}

export function createMysqlPool(settings: MysqlSettings): mysql.Pool {
  return mysql.createPool({
    ...mysql2Transport(settings.host, settings.port, settings.tls),
    user: settings.user,
    password: settings.password,
    database: settings.database,
    connectionLimit: settings.poolSize,
    // A bounded queue: when MySQL is stalled, excess plays fail fast with 503 instead of piling up.
    queueLimit: settings.poolSize * 20,
    connectTimeout: settings.connectTimeoutMs,
    enableKeepAlive: true,
    timezone: 'Z',
    supportBigNumbers: true,
  });
}

export class MysqlCatalogStore implements CatalogStore {
  readonly #pool: mysql.Pool;
  readonly #queryTimeoutMs: number;
  readonly #metrics: Metrics;

  constructor(pool: mysql.Pool, queryTimeoutMs: number, metrics: Metrics) {
    this.#pool = pool;
    this.#queryTimeoutMs = queryTimeoutMs;
    this.#metrics = metrics;
  }

  /**
   * One statement, one round trip: the content's renditions and the viewer's rights come back as
   * rows of one UNION, told apart by `row_type`. A content without renditions still yields its row.
   */
  async playData(userId: string, contentId: string): Promise<PlayData> {
    const rows = await this.#query(
      'play_data',
      `SELECT 'content' AS row_type, c.title, r.protocol, r.height, r.path, NULL AS kind, NULL AS max_height, NULL AS expires_at, NULL AS devices
         FROM contents c LEFT JOIN renditions r ON r.content_id = c.id
        WHERE c.id = ?
       UNION ALL
       SELECT 'right', NULL, NULL, NULL, NULL, p.kind, p.max_height, p.expires_at, NULL
         FROM purchases p
        WHERE p.user_id = ? AND p.content_id = ?
       UNION ALL
       SELECT 'right', NULL, NULL, NULL, NULL, 'subscription', sp.max_height, s.expires_at, sp.devices
         FROM subscriptions s
         JOIN plan_contents pc ON pc.plan_id = s.plan_id AND pc.content_id = ?
         JOIN subscription_plans sp ON sp.id = s.plan_id
        WHERE s.user_id = ?`,
      [contentId, userId, contentId, contentId, userId],
    );
    const contentRows = rows.filter((row) => row.row_type === 'content');
    const first = contentRows[0];
    const content: Content | undefined =
      first === undefined
        ? undefined
        : {
            id: contentId,
            title: String(first.title),
            renditions: contentRows
              .filter((row) => row.protocol !== null)
              .map((row) => ({ protocol: row.protocol as Protocol, height: Number(row.height), path: String(row.path) })),
          };
    const rights: Right[] = rows
      .filter((row) => row.row_type === 'right')
      .map((row) => ({
        kind: row.kind as RightKind,
        maxHeight: Number(row.max_height),
        expiresAt: row.expires_at instanceof Date ? row.expires_at.getTime() : null,
        devices: typeof row.devices === 'string' ? splitList(row.devices) : null,
      }));
    return { content, rights };
  }

  async deviceClass(name: string): Promise<DeviceClass | undefined> {
    const rows = await this.#query(
      'device_class',
      'SELECT name, max_height, protocols, default_protocol, enabled FROM device_classes WHERE name = ?',
      [name],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      name: String(row.name),
      maxHeight: Number(row.max_height),
      protocols: splitList(String(row.protocols)) as Protocol[],
      defaultProtocol: row.default_protocol as Protocol,
      enabled: Boolean(row.enabled),
    };
  }

  /** A cheap round trip for the deep health check. */
  async ping(timeoutMs: number): Promise<void> {
    await this.#pool.query({ sql: 'SELECT 1', timeout: timeoutMs });
  }

  async #query(operation: string, sql: string, params: (string | number)[]): Promise<RowDataPacket[]> {
    try {
      return await this.#metrics.observe('mysql', operation, () =>
        // mysql2's `timeout` covers the statement's execution but not its PREPARE on a connection that
        // has not seen it yet, nor the wait for a pool slot: against a stalled server those wait forever.
        // This outer bound is what actually bounds a play; the pool's bounded queue keeps abandoned
        // calls from piling up.
        withTimeout(
          this.#pool.execute<RowDataPacket[]>({ sql, timeout: this.#queryTimeoutMs }, params).then(([rows]) => rows),
          this.#queryTimeoutMs,
          (ms) => Object.assign(new Error(`no answer within ${ms} ms`), { code: 'DEADLINE_EXCEEDED' }),
        ),
      );
    } catch (error) {
      throw new CatalogUnavailableError('The catalog database is unavailable', { cause: error });
    }
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
