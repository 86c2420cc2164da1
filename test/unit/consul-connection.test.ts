// How the programs find their Consul agent and how they talk TLS to it: the consul CLI's variables
// as api.DefaultConfig/NewClient/SetupTLSConfig read them, each over its key in the program's file,
// and every file read at start-up so a bad one is a configuration error naming it.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { consulConnection, type ConsulConnectionFileSettings } from '../../common/consul/connection.ts';
import { HooksConfigError, loadHooksConfig } from '../../sentinel-hooks/config.ts';
import { makeTempDir } from '../../testkit/processes.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../../testkit/tls.ts';
import { loadWatcherConfig, WatcherConfigError } from '../../watcher/config.ts';

class Refused extends Error {}
const fail = (message: string): Error => new Refused(message);
const FILE = '/etc/st-api/test.json';
const connect = (env: NodeJS.ProcessEnv, file: ConsulConnectionFileSettings = {}): ReturnType<typeof consulConnection> =>
  consulConnection(env, file, FILE, fail);
const refusal = (env: NodeJS.ProcessEnv, file: ConsulConnectionFileSettings = {}): string => {
  try {
    connect(env, file);
  } catch (error) {
    assert.ok(error instanceof Refused, String(error));
    return error.message;
  }
  return assert.fail('accepted');
};

let dir: string;
let ca: TestCa;
let other: TestCa;
let client: CertificateFiles;

before(async () => {
  dir = await makeTempDir('consul-connection');
  ca = createTestCa(dir);
  other = createTestCa(dir, 'another CA');
  client = ca.client('client', 'st-api');
});

describe('the Consul address and scheme', () => {
  it('when nothing is set, then 127.0.0.1:8500 over HTTP, as the consul CLI', () => {
    assert.deepEqual(connect({}), { address: '127.0.0.1:8500', tls: undefined, warnings: [] });
  });

  it('when CONSUL_HTTP_ADDR is https://, then TLS, verified, with the system CAs and the host as the name', () => {
    assert.deepEqual(connect({ CONSUL_HTTP_ADDR: 'https://consul.local:8501' }), {
      address: 'https://consul.local:8501',
      tls: { ca: undefined, clientCert: undefined, serverName: undefined, verify: true },
      warnings: [],
    });
    assert.equal(connect({ CONSUL_HTTP_ADDR: 'http://10.0.0.9:8500' }).address, '10.0.0.9:8500');
  });

  it('when CONSUL_HTTP_SSL is true, then TLS even for an http:// address ("never revert to http"); false does not undo https://', () => {
    for (const value of ['true', '1', 't', 'TRUE', 'True'])
      assert.equal(connect({ CONSUL_HTTP_SSL: value }).address, 'https://127.0.0.1:8500');
    assert.equal(connect({ CONSUL_HTTP_SSL: 'true', CONSUL_HTTP_ADDR: 'http://10.0.0.9:8501' }).address, 'https://10.0.0.9:8501');
    assert.equal(connect({ CONSUL_HTTP_SSL: 'false', CONSUL_HTTP_ADDR: 'https://10.0.0.9:8501' }).address, 'https://10.0.0.9:8501');
    assert.equal(connect({ CONSUL_HTTP_SSL: 'false' }).address, '127.0.0.1:8500');
  });

  it('when a flag is not a Go boolean or the scheme is unknown, then a configuration error naming it (Go would warn and go on)', () => {
    assert.match(refusal({ CONSUL_HTTP_SSL: 'yes' }), /^CONSUL_HTTP_SSL must be true or false .*"yes"/);
    assert.match(refusal({ CONSUL_HTTP_SSL_VERIFY: 'no' }), /^CONSUL_HTTP_SSL_VERIFY must be true or false/);
    assert.match(refusal({}, { consulSsl: undefined, consulAddress: 'unix:///run/consul.sock' }), /unknown scheme/);
  });

  it('when a variable and the file both set something, then the variable wins, setting by setting; an empty variable is unset', () => {
    const file: ConsulConnectionFileSettings = { consulAddress: 'https://10.0.0.1:8501', consulTlsServerName: 'from-file.consul' };
    const both = connect({ CONSUL_HTTP_ADDR: 'https://10.0.0.2:8501' }, file);
    assert.equal(both.address, 'https://10.0.0.2:8501');
    assert.equal(both.tls?.serverName, 'from-file.consul');
    assert.equal(connect({ CONSUL_HTTP_ADDR: '' }, file).address, 'https://10.0.0.1:8501');
    assert.equal(connect({ CONSUL_HTTP_ADDR: '10.0.0.3:8500' }, file).address, '10.0.0.3:8500');
    assert.equal(connect({}, { consulAddress: '10.0.0.4:8501', consulSsl: true }).address, 'https://10.0.0.4:8501');
  });

  it('when CONSUL_TLS_SERVER_NAME carries a port, then the port is dropped (SetupTLSConfig)', () => {
    const name = (value: string): string | undefined => connect({ CONSUL_HTTP_SSL: 'true', CONSUL_TLS_SERVER_NAME: value }).tls?.serverName;
    assert.equal(name('server.dc1.consul:8501'), 'server.dc1.consul');
    assert.equal(name('server.dc1.consul'), 'server.dc1.consul');
    assert.equal(name('[::1]:8501'), '::1');
    assert.equal(name('::1'), '::1');
  });
});

describe('CAs, client certificates and keys', () => {
  it('when CONSUL_CACERT names a PEM, then its certificates are trusted instead of the system’s; it wins over CONSUL_CAPATH', () => {
    const tls = connect({ CONSUL_HTTP_SSL: 'true', CONSUL_CACERT: ca.caFile, CONSUL_CAPATH: dir }).tls;
    assert.deepEqual(tls?.ca, { pems: [ca.caPem.trim()], source: `the CA in ${ca.caFile}` });
  });

  it('when CONSUL_CAPATH names a directory, then every file in it is a PEM CA (as go-rootcerts), a file that is not is an error', () => {
    const path = join(dir, 'ca-path');
    mkdirSync(path);
    copyFileSync(ca.caFile, join(path, 'a.pem'));
    copyFileSync(other.caFile, join(path, 'b.pem'));
    mkdirSync(join(path, 'subdir'));
    const tls = connect({ CONSUL_HTTP_SSL: 'true', CONSUL_CAPATH: path }).tls;
    assert.deepEqual(tls?.ca, { pems: [ca.caPem.trim(), other.caPem.trim()], source: `the CAs in ${path}` });
    writeFileSync(join(path, 'README'), 'not a certificate');
    assert.equal(refusal({ CONSUL_CAPATH: path }), `the Consul CA file ${join(path, 'README')} (CONSUL_CAPATH) is not PEM`);
    const empty = join(dir, 'empty-ca-path');
    mkdirSync(empty);
    assert.match(
      refusal({}, { consulCaPath: empty }),
      new RegExp(`CA directory ${empty} \\(consulCaPath in ${FILE}\\) holds no certificate file`),
    );
  });

  it('when a CA file cannot be read or holds no certificate, then an error naming the file and where it was set', () => {
    const missing = join(dir, 'missing.pem');
    assert.equal(refusal({ CONSUL_CACERT: missing }), `cannot read the Consul CA file ${missing} (CONSUL_CACERT): ENOENT`);
    assert.equal(refusal({}, { consulCaFile: missing }), `cannot read the Consul CA file ${missing} (consulCaFile in ${FILE}): ENOENT`);
    assert.equal(
      refusal({ CONSUL_CACERT: client.keyFile }),
      `the Consul CA file ${client.keyFile} (CONSUL_CACERT) holds no PEM certificate`,
    );
  });

  it('when a client certificate and its key are given, then both are loaded; one without the other, or a key of another, is an error', () => {
    const tls = connect({ CONSUL_HTTP_SSL: 'true', CONSUL_CLIENT_CERT: client.certFile, CONSUL_CLIENT_KEY: client.keyFile }).tls;
    assert.match(tls?.clientCert?.cert ?? '', /^-----BEGIN CERTIFICATE-----/);
    assert.match(tls?.clientCert?.key ?? '', /^-----BEGIN PRIVATE KEY-----/);
    assert.match(refusal({ CONSUL_CLIENT_CERT: client.certFile }), /^CONSUL_CLIENT_CERT is set without its pair/);
    assert.match(
      refusal({}, { consulClientKeyFile: client.keyFile }),
      new RegExp(`^consulClientKeyFile in ${FILE} is set without its pair`),
    );
    const stranger = other.client('stranger', 'stranger');
    assert.match(
      refusal({ CONSUL_CLIENT_CERT: client.certFile, CONSUL_CLIENT_KEY: stranger.keyFile }),
      new RegExp(
        `^the Consul client certificate ${client.certFile} \\(CONSUL_CLIENT_CERT\\) and key ${stranger.keyFile} \\(CONSUL_CLIENT_KEY\\) cannot be used together`,
      ),
    );
    const missing = join(dir, 'missing.key');
    assert.equal(
      refusal({ CONSUL_CLIENT_CERT: client.certFile, CONSUL_CLIENT_KEY: missing }),
      `cannot read the Consul client key ${missing} (CONSUL_CLIENT_KEY): ENOENT`,
    );
  });

  it('when the client key is readable by everyone, or by its group while a user owns it, then common/secret-file.ts warns; 0600 and root:group 0640 are quiet', () => {
    const warningsFor = (mode: number, uid: number): readonly string[] => {
      const key = join(dir, `key-${mode.toString(8)}-${uid}.pem`);
      copyFileSync(client.keyFile, key);
      chmodSync(key, mode);
      chownSync(key, uid, uid);
      return connect({ CONSUL_HTTP_SSL: 'true', CONSUL_CLIENT_CERT: client.certFile, CONSUL_CLIENT_KEY: key }).warnings;
    };
    assert.deepEqual(warningsFor(0o600, 12345), []);
    assert.deepEqual(warningsFor(0o640, 0), []);
    const group = join(dir, 'key-640-12345.pem');
    assert.deepEqual(warningsFor(0o640, 12345), [
      `secret file ${group} has mode 0640 (owner uid 12345): its group can read it; chmod 600 it, or chown it to root to share it with the group on purpose`,
    ]);
    const world = join(dir, 'key-644-0.pem');
    assert.deepEqual(warningsFor(0o644, 0), [`secret file ${world} has mode 0644 (owner uid 0): every user can read it; chmod 600 it`]);
  });

  it('when verification is turned off, then it is off and warned, from the variable or the file', () => {
    const fromEnv = connect({ CONSUL_HTTP_ADDR: 'https://10.0.0.1:8501', CONSUL_HTTP_SSL_VERIFY: 'false' });
    assert.equal(fromEnv.tls?.verify, false);
    assert.match(fromEnv.warnings.join(), /^CONSUL_HTTP_SSL_VERIFY is false: .*never in production$/);
    const fromFile = connect({}, { consulAddress: 'https://10.0.0.1:8501', consulSslVerify: false });
    assert.match(fromFile.warnings.join(), new RegExp(`^consulSslVerify in ${FILE} is false`));
    assert.equal(
      connect({ CONSUL_HTTP_SSL_VERIFY: 'true' }, { consulAddress: 'https://10.0.0.1:8501', consulSslVerify: false }).tls?.verify,
      true,
    );
  });

  it('when TLS files are set for a plain-HTTP address, then they are still read (as Go does) and a warning says nothing is encrypted', () => {
    const plain = connect({ CONSUL_CACERT: ca.caFile });
    assert.equal(plain.tls, undefined);
    assert.match(plain.warnings.join(), /^CONSUL_CACERT set, but the Consul address 127\.0\.0\.1:8500 is plain HTTP: nothing is encrypted/);
  });
});

describe('the programs’ configuration files', () => {
  const watcherFile = (extra: Record<string, unknown>): string => {
    const file = join(dir, `watcher-${Object.keys(extra).join('-')}.json`);
    writeFileSync(file, JSON.stringify({ recordName: 'play.example.com', zoneId: 'Z1', ...extra }));
    return file;
  };
  const hooksFile = (extra: Record<string, unknown>): string => {
    const file = join(dir, `hooks-${Object.keys(extra).join('-')}.json`);
    const endpoint = { address: '127.0.0.1', port: 6379 };
    writeFileSync(file, JSON.stringify({ masterName: 'mymaster', sentinels: [endpoint], instances: [endpoint], ...extra }));
    return file;
  };

  it('when the watcher’s file names the address, CA and client certificate, then its configuration carries them', () => {
    const file = watcherFile({
      consulAddress: 'https://127.0.0.1:8501',
      consulCaFile: ca.caFile,
      consulClientCertFile: client.certFile,
      consulClientKeyFile: client.keyFile,
      consulTlsServerName: 'server.dc1.consul',
    });
    const config = loadWatcherConfig(file, {});
    assert.equal(config.consulAddress, 'https://127.0.0.1:8501');
    assert.equal(config.consulTls?.serverName, 'server.dc1.consul');
    assert.equal(config.consulTls?.ca?.source, `the CA in ${ca.caFile}`);
    assert.ok(config.consulTls?.clientCert !== undefined);
    assert.equal(loadWatcherConfig(file, { CONSUL_HTTP_ADDR: '127.0.0.1:8500' }).consulTls, undefined);
  });

  it('when the hooks’ file names them, then theirs does too; a bad file is each program’s configuration error', () => {
    const config = loadHooksConfig(hooksFile({ consulAddress: 'https://127.0.0.1:8501', consulCaFile: ca.caFile }), {});
    assert.equal(config.consulAddress, 'https://127.0.0.1:8501');
    assert.equal(config.consulTls?.ca?.pems.length, 1);
    const missing = join(dir, 'no-ca.pem');
    assert.throws(() => loadHooksConfig(hooksFile({ consulCaFile: missing }), {}), HooksConfigError);
    assert.throws(() => loadWatcherConfig(watcherFile({ consulCaFile: missing }), {}), WatcherConfigError);
    assert.throws(() => loadWatcherConfig(watcherFile({ consulCaFile: 'relative/ca.pem' }), {}), /consulCaFile: must be an absolute path/);
    assert.throws(() => loadHooksConfig(hooksFile({ consulSsl: 'yes' }), {}), /consulSsl: /);
  });
});
