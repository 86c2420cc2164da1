import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadWatcherConfig, WatcherConfigError } from '../../watcher/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'st-watcher-config-'));
const file = join(dir, 'dns-watcher.json');
writeFileSync(file, JSON.stringify({ recordName: 'play.example.com', zoneId: '/hostedzone/Z0123456789ABC' }));

describe('watcher configuration', () => {
  it('when only the required keys are given, then the documented defaults apply and the zone id is bare', () => {
    const config = loadWatcherConfig(file, {});
    assert.equal(config.zoneId, 'Z0123456789ABC');
    assert.deepEqual(
      [config.service, config.ttl, config.minHealthy, config.maxDeletesPerRun, config.consulAddress],
      ['st-api', 30, 2, 10, '127.0.0.1:8500'],
    );
    assert.equal(config.consulToken, undefined);
  });

  it('when CONSUL_HTTP_TOKEN_FILE names a file, then the token is read from it; CONSUL_HTTP_TOKEN wins when both are set', () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'from-file\n');
    assert.equal(loadWatcherConfig(file, { CONSUL_HTTP_TOKEN_FILE: tokenFile }).consulToken, 'from-file');
    assert.equal(loadWatcherConfig(file, { CONSUL_HTTP_TOKEN_FILE: tokenFile, CONSUL_HTTP_TOKEN: 'from-env' }).consulToken, 'from-env');
    assert.throws(() => loadWatcherConfig(file, { CONSUL_HTTP_TOKEN_FILE: join(dir, 'missing') }), WatcherConfigError);
  });

  it('when the CONSUL_HTTP_TOKEN_FILE file is readable by everyone or by a user’s group, then the run’s Consul warnings name it; root:group 0640 is quiet', () => {
    const tokenFile = join(dir, 'token-modes');
    writeFileSync(tokenFile, 'from-file\n');
    const warningsWith = (mode: number, uid: number): readonly string[] => {
      chmodSync(tokenFile, mode);
      chownSync(tokenFile, uid, uid);
      return loadWatcherConfig(file, { CONSUL_HTTP_TOKEN_FILE: tokenFile }).consulWarnings;
    };
    assert.deepEqual(warningsWith(0o600, 12345), []);
    assert.deepEqual(warningsWith(0o640, 0), []);
    assert.deepEqual(warningsWith(0o644, 0), [
      `secret file ${tokenFile} has mode 0644 (owner uid 0): every user can read it; chmod 600 it`,
    ]);
    assert.match(
      warningsWith(0o640, 12345).join(),
      /^secret file .*token-modes has mode 0640 \(owner uid 12345\): its group can read it; /,
    );
  });

  it('when keys are wrong or unknown, then every one is named', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ recordName: 'not a name', zoneId: 'lowercase', ttl: 0, surprise: true }));
    assert.throws(
      () => loadWatcherConfig(bad, {}),
      (error: unknown) => {
        const message = (error as Error).message;
        return ['recordName', 'zoneId', 'ttl', 'surprise'].every((key) => message.includes(key));
      },
    );
  });

  it('when consulTokenFile names a file, then the token is read from it and wins over the environment; unreadable or empty is a configuration error that never shows the token', () => {
    const tokenFile = join(dir, 'watcher.token');
    writeFileSync(tokenFile, '  watcher-token-from-config\n');
    const withFile = join(dir, 'with-token-file.json');
    writeFileSync(withFile, JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z0123456789ABC', consulTokenFile: tokenFile }));
    assert.equal(loadWatcherConfig(withFile, {}).consulToken, 'watcher-token-from-config');
    assert.equal(loadWatcherConfig(withFile, { CONSUL_HTTP_TOKEN: 'the-agents-env-token' }).consulToken, 'watcher-token-from-config');

    writeFileSync(tokenFile, '\n');
    assert.throws(
      () => loadWatcherConfig(withFile, {}),
      (error: unknown) => error instanceof WatcherConfigError && /consulTokenFile .* is empty/.test(error.message),
    );
    const missing = join(dir, 'missing-token.json');
    writeFileSync(
      missing,
      JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z0123456789ABC', consulTokenFile: join(dir, 'nope') }),
    );
    assert.throws(
      () => loadWatcherConfig(missing, {}),
      (error: unknown) => error instanceof WatcherConfigError && /cannot read consulTokenFile .*nope.* \(ENOENT\)/.test(error.message),
    );
    const relative = join(dir, 'relative-token.json');
    writeFileSync(relative, JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z0123456789ABC', consulTokenFile: 'watcher.token' }));
    assert.throws(() => loadWatcherConfig(relative, {}), /consulTokenFile: must be an absolute path/);
  });
});
