// The watcher's Consul token comes from the file its own configuration names (consulTokenFile), not
// from the Consul agent's environment, where it would be every watch's token (issue #10 item 5).
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configFileWith, startWatcherWorld, watcherCli, type WatcherWorld } from './harness.ts';

let world: WatcherWorld;
let config: string;
let tokenDir: string;
const TOKEN = 'watcher-token-3f1c';

before(async () => {
  world = await startWatcherWorld();
  tokenDir = mkdtempSync(join(tmpdir(), 'st-watcher-token-'));
  const tokenFile = join(tokenDir, 'dns-watcher.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  config = configFileWith(world, { consulTokenFile: tokenFile });
});

after(async () => {
  delete process.env['CONSUL_HTTP_TOKEN'];
  await world.stop();
});

describe('the watcher’s Consul token', () => {
  it('when dns-watcher.json names consulTokenFile, then every Consul call of a run carries that token', async () => {
    world.consul.clearLogs();
    const result = await watcherCli(world, ['reconcile', '--config', config]);
    assert.equal(result.code, 0, result.stderr);
    const calls = world.consul.callLog();
    assert.ok(calls.length >= 5, `${calls.length} calls`);
    assert.deepEqual([...new Set(calls.map((call) => call.token))], [TOKEN]);
    assert.doesNotMatch(result.stderr, new RegExp(TOKEN), 'the token is never logged');
    assert.doesNotMatch(result.stderr, /secret file/, 'a 0600 token file is not warned about');
  });

  it('when the token file is 0640, then the run warns if a user owns it and is quiet if root does (the README’s root:<group> grant)', async () => {
    const tokenFile = join(tokenDir, 'group.token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    chmodSync(tokenFile, 0o640);
    const configWithToken = configFileWith(world, { consulTokenFile: tokenFile });
    chownSync(tokenFile, 12345, 12345);
    const userOwned = await watcherCli(world, ['status', '--config', configWithToken]);
    assert.equal(userOwned.code, 0, userOwned.stderr);
    assert.ok(
      userOwned.stderr.includes(`secret file ${tokenFile} has mode 0640 (owner uid 12345): its group can read it;`),
      userOwned.stderr,
    );
    assert.doesNotMatch(userOwned.stderr, new RegExp(TOKEN), 'the token is never logged');
    chownSync(tokenFile, 0, 12345);
    const rootOwned = await watcherCli(world, ['status', '--config', configWithToken]);
    assert.equal(rootOwned.code, 0, rootOwned.stderr);
    assert.doesNotMatch(rootOwned.stderr, /secret file/);
  });

  it('when a handler still finds a token in the agent’s environment, then the file’s token is used and the run warns that every watch on the agent gets it', async () => {
    world.consul.clearLogs();
    const result = await watcherCli(world, ['handle', '--config', config], {
      stdin: '[]\n',
      env: { CONSUL_INDEX: '1', CONSUL_HTTP_TOKEN: 'agent-env-token' },
    });
    delete process.env['CONSUL_HTTP_TOKEN'];
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual([...new Set(world.consul.callLog().map((call) => call.token))], [TOKEN]);
    assert.match(result.stderr, /"variables":\["CONSUL_HTTP_TOKEN"\].*every watch on this agent without its own token uses/);
    assert.doesNotMatch(result.stderr, /agent-env-token/, 'the token is never logged');
  });

  it('when the agent’s environment holds no token, then the handler does not warn', async () => {
    const result = await watcherCli(world, ['handle', '--config', config], { stdin: '[]\n', env: { CONSUL_INDEX: '2' } });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /every watch on this agent/);
  });
});
