// Redis and Sentinel with authentication, as production runs them: a real redis-server whose default
// user is off and whose hooks user may run ROLE only, and a real redis-sentinel with requirepass.
// The hooks read the truth with the credentials from their own password files, and a wrong or
// missing credential shows as what it is, without the secret.
import assert from 'node:assert/strict';
import { chmod, chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { HooksConfigError, loadHooksConfig } from '../../sentinel-hooks/config.ts';
import { command, ReplyError } from '../../sentinel-hooks/resp.ts';
import { askSentinel, readRole } from '../../sentinel-hooks/truth.ts';
import { freePort, LOOPBACK, makeTempDir, ManagedServer } from '../../testkit/processes.ts';
import { startRedis, type RedisServer } from '../../testkit/redis.ts';

const HOOKS_PASSWORD = 'hooks-secret-7f3a';
const SENTINEL_PASSWORD = 'sentinel-secret-91c2';
const probe = { timeoutMs: 1000, signal: new AbortController().signal };

let redis: RedisServer;
let sentinel: ManagedServer;
let sentinelPort: number;
let dir: string;

before(async () => {
  dir = await makeTempDir('st-auth');
  redis = await startRedis();
  const admin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    // What consul/README.md asks for: a user that may run ROLE and nothing else; then no anonymous access.
    await admin.call('ACL', 'SETUSER', 'st-hooks', 'on', `>${HOOKS_PASSWORD}`, '-@all', '+role');
    await admin.call('ACL', 'SETUSER', 'no-role', 'on', '>other-secret', '-@all', '+ping');
    await admin.call('ACL', 'SETUSER', 'admin', 'on', '>admin-secret', '+@all', '~*');
    await admin.call('ACL', 'SETUSER', 'default', 'off');
  } finally {
    admin.disconnect();
  }

  sentinelPort = await freePort();
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${sentinelPort}`,
      `bind ${LOOPBACK}`,
      'daemonize no',
      'logfile ""',
      `dir ${dir}`,
      `requirepass ${SENTINEL_PASSWORD}`,
      `sentinel monitor mymaster ${redis.host} ${redis.port} 1`,
      'sentinel auth-user mymaster admin',
      'sentinel auth-pass mymaster admin-secret',
      '',
    ].join('\n'),
  );
  sentinel = new ManagedServer({
    name: 'redis-sentinel:auth',
    command: 'redis-sentinel',
    args: [conf],
    logFile: join(dir, 'sentinel.log'),
    readyTimeoutMs: 15_000,
    isReady: async () =>
      (await command(LOOPBACK, sentinelPort, ['PING'], { timeoutMs: 500, auth: { password: SENTINEL_PASSWORD } })) === 'PONG',
  });
  await sentinel.start();
});

after(async () => {
  await sentinel?.stop();
  await redis?.stop();
});

const instance = (): { ip: string; port: number } => ({ ip: redis.host, port: redis.port });

describe('when the hooks read ROLE from a Redis that requires authentication', () => {
  it('then with the hooks user they read it', async () => {
    assert.deepEqual(await readRole(instance(), { ...probe, auth: { username: 'st-hooks', password: HOOKS_PASSWORD } }), {
      kind: 'master',
    });
  });

  it('then without credentials, with a wrong password or with a user that may not run ROLE, the instance reads as unreachable with the reason and no secret', async () => {
    const cases = [
      { auth: undefined, reason: /^NOAUTH/ },
      { auth: { username: 'st-hooks', password: 'wrong-password' }, reason: /^WRONGPASS/ },
      { auth: { password: HOOKS_PASSWORD }, reason: /^ERR AUTH <password> called without any password configured for the default user/ },
      { auth: { username: 'no-role', password: 'other-secret' }, reason: /^NOPERM/ },
    ];
    for (const { auth, reason } of cases) {
      const role = await readRole(instance(), { ...probe, auth });
      assert.equal(role.kind, 'unreachable');
      assert.match(role.kind === 'unreachable' ? role.error : '', reason);
      assert.ok(!JSON.stringify(role).includes(HOOKS_PASSWORD) && !JSON.stringify(role).includes('wrong-password'), JSON.stringify(role));
    }
  });

  it('then a refused AUTH is the reply, not the command that follows it', async () => {
    const reply = await command(redis.host, redis.port, ['ROLE'], { timeoutMs: 1000, auth: { username: 'st-hooks', password: 'nope' } });
    assert.ok(reply instanceof ReplyError);
    assert.match(reply.message, /^WRONGPASS/);
  });
});

describe('when the hooks ask a Sentinel that requires a password', () => {
  it('then with it they get the master address, and without it the answer says why', async () => {
    assert.deepEqual(
      await askSentinel({ ip: LOOPBACK, port: sentinelPort }, 'mymaster', { ...probe, auth: { password: SENTINEL_PASSWORD } }),
      {
        sentinel: `${LOOPBACK}:${sentinelPort}`,
        master: `${redis.host}:${redis.port}`,
      },
    );
    const refused = await askSentinel({ ip: LOOPBACK, port: sentinelPort }, 'mymaster', probe);
    assert.equal(refused.master, undefined, 'counts as no answer, so it cannot make a majority');
    assert.match(refused.error ?? '', /^NOAUTH/);
  });
});

describe('when the configuration names password files', () => {
  const config = async (extra: Record<string, unknown>): Promise<string> => {
    const file = join(dir, `hooks-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(
      file,
      JSON.stringify({
        masterName: 'mymaster',
        sentinels: [{ address: LOOPBACK, port: sentinelPort }],
        instances: [{ address: redis.host, port: redis.port }],
        ...extra,
      }),
    );
    return file;
  };

  it('then the passwords are read from them, one trailing newline dropped', async () => {
    await writeFile(join(dir, 'redis.pass'), `${HOOKS_PASSWORD}\n`);
    await writeFile(join(dir, 'sentinel.pass'), SENTINEL_PASSWORD);
    const loaded = loadHooksConfig(
      await config({
        redisAuth: { username: 'st-hooks', passwordFile: join(dir, 'redis.pass') },
        sentinelAuth: { passwordFile: join(dir, 'sentinel.pass') },
      }),
      {},
    );
    assert.deepEqual(loaded.redisAuth, { username: 'st-hooks', password: HOOKS_PASSWORD });
    assert.deepEqual(loaded.sentinelAuth, { username: undefined, password: SENTINEL_PASSWORD });
  });

  it('then a password file others may read is warned about once (file, mode, no secret); 0600 and root:group 0640 are quiet', async () => {
    const passwordFile = async (name: string, mode: number, uid: number): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, `${HOOKS_PASSWORD}\n`);
      await chmod(path, mode);
      await chown(path, uid, uid);
      return path;
    };
    const quiet = loadHooksConfig(
      await config({
        redisAuth: { passwordFile: await passwordFile('owner.pass', 0o600, 12345) },
        sentinelAuth: { passwordFile: await passwordFile('root-group.pass', 0o640, 0) },
      }),
      {},
    );
    assert.deepEqual(quiet.warnings, []);
    const userGroup = await passwordFile('user-group.pass', 0o640, 12345);
    const world = await passwordFile('world.pass', 0o644, 0);
    const loose = loadHooksConfig(await config({ redisAuth: { passwordFile: userGroup }, sentinelAuth: { passwordFile: world } }), {});
    assert.deepEqual(
      loose.warnings.map(({ file, mode }) => ({ file, mode })),
      [
        { file: userGroup, mode: '0640' },
        { file: world, mode: '0644' },
      ],
    );
    assert.match(
      loose.warnings[0]?.message ?? '',
      /^secret file .*user-group\.pass has mode 0640 \(owner uid 12345\): its group can read it; /,
    );
    assert.match(
      loose.warnings[1]?.message ?? '',
      /^secret file .*world\.pass has mode 0644 \(owner uid 0\): every user can read it; chmod 600 it$/,
    );
    assert.doesNotMatch(JSON.stringify(loose.warnings), new RegExp(HOOKS_PASSWORD));
  });

  it('then a missing or empty file, a relative path or a password in the JSON itself is refused by name, never echoing a secret', async () => {
    await writeFile(join(dir, 'empty.pass'), '');
    const refused = async (extra: Record<string, unknown>, pattern: RegExp): Promise<void> => {
      const file = await config(extra);
      assert.throws(
        () => loadHooksConfig(file, {}),
        (error: unknown) => {
          assert.ok(error instanceof HooksConfigError);
          assert.match(error.message, pattern);
          assert.ok(!error.message.includes(HOOKS_PASSWORD));
          return true;
        },
      );
    };
    await refused(
      { redisAuth: { passwordFile: join(dir, 'missing.pass') } },
      /redisAuth\.passwordFile .*missing\.pass cannot be read \(ENOENT\)/,
    );
    await refused({ sentinelAuth: { passwordFile: join(dir, 'empty.pass') } }, /sentinelAuth\.passwordFile .*empty\.pass is empty/);
    await refused({ redisAuth: { passwordFile: 'redis.pass' } }, /redisAuth\.passwordFile/);
    await refused({ redisAuth: { password: HOOKS_PASSWORD, passwordFile: join(dir, 'redis.pass') } }, /redisAuth: Unrecognized key/);
  });
});
