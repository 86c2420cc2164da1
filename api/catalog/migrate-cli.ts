// `npm run db:migrate [-- --demo-data]`: applies the catalog migrations to the database named in
// ST_API_CONFIG. st-api's own account should be read-only, so a DDL-capable account can be given
// with ST_API_MIGRATE_USER and ST_API_MIGRATE_PASSWORD.
import mysql from 'mysql2/promise';
import { ConfigError, readConfigFile } from '../config.ts';
import { demoDataset } from './dataset.ts';
import { migrate } from './migrate.ts';
import { mysql2Transport } from './mysql-tls.ts';
import { seed } from './seed.ts';

const env = process.env;
try {
  if (env.ST_API_CONFIG === undefined)
    throw new ConfigError(['ST_API_CONFIG: set it to the configuration file that names the MySQL database']);
  const config = readConfigFile(env.ST_API_CONFIG, env);
  if (config.mysql === undefined)
    throw new ConfigError(['mysql: the configuration has no MySQL section (the embedded demo needs no migration)']);
  const account = {
    ...config.mysql,
    user: env.ST_API_MIGRATE_USER ?? config.mysql.user,
    password: env.ST_API_MIGRATE_PASSWORD ?? config.mysql.password,
  };
  const applied = await migrate(account);
  process.stdout.write(applied.length === 0 ? 'catalog schema is up to date\n' : `applied: ${applied.join(', ')}\n`);
  if (process.argv.includes('--demo-data')) {
    const { host, port, tls, user, password, database } = account;
    const pool = mysql.createPool({ ...mysql2Transport(host, port, tls), user, password, database, timezone: 'Z', connectionLimit: 1 });
    await seed(pool, demoDataset(Date.now())).finally(() => pool.end());
    process.stdout.write('demo data loaded\n');
  }
} catch (error) {
  process.stderr.write(`db:migrate: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 78 : 1);
}
