// TLS to MySQL/MariaDB: the PEM files named in the configuration, read once at start-up, and the
// mysql2 options that verify the server's certificate chain and its name.
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { connect, isIP, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SslOptions } from 'mysql2';
import { readSecretFile, type SecretFileWarning } from '../../common/secret-file.ts';

/** `mysql.tls` as the operator writes it: file paths. */
export interface MysqlTlsFiles {
  ca: string;
  servername?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** `mysql.tls` once read: PEM text, and the name the certificate must carry. */
export interface MysqlTls {
  ca: string;
  /** The name checked against the server's certificate (mysql.host unless given). */
  servername: string;
  cert?: string;
  key?: string;
  /** Set when others than its owner can read the key file: logged once at start-up. */
  keyWarning?: SecretFileWarning;
}

/**
 * Reads and checks the files; `report` receives one problem per bad field (the file's name and the
 * error code, never its content). Returns undefined when anything was reported.
 */
export function readMysqlTls(files: MysqlTlsFiles, host: string, report: (field: string, message: string) => void): MysqlTls | undefined {
  let ok = true;
  const problem = (field: string, message: string): void => {
    ok = false;
    report(field, message);
  };
  let keyWarning: SecretFileWarning | undefined;
  const read = (field: string, path: string, parses: (pem: string) => boolean, what: string): string => {
    let pem: string;
    try {
      pem = field === 'key' ? readSecretFile(path, (warning) => (keyWarning = warning)) : readFileSync(path, 'utf8');
    } catch (error) {
      problem(field, `cannot read ${path} (${errorCode(error)})`);
      return '';
    }
    if (!parses(pem)) problem(field, `${path} holds no PEM ${what}`);
    return pem;
  };
  const ca = read('ca', files.ca, parsesAsCertificate, 'certificate');
  const cert = files.cert === undefined ? undefined : read('cert', files.cert, parsesAsCertificate, 'certificate');
  const key = files.key === undefined ? undefined : read('key', files.key, parsesAsKey, 'private key');
  if (ok && cert !== undefined && key !== undefined && !keyMatches(cert, key))
    problem('key', `${files.key ?? ''} is not the key of the certificate in ${files.cert ?? ''}`);
  if (!ok) return undefined;
  return {
    ca,
    servername: files.servername ?? host,
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(keyWarning === undefined ? {} : { keyWarning }),
  };
}

/**
 * mysql2's address and TLS options. mysql2 has no `servername` option: it sends and checks the name
 * in `host`, and only with `verifyIdentity`, which is off by default. For an address it sends no
 * name, and Node then checks the certificate against the socket's `_host` (set by net for names
 * only), else against "localhost": any certificate for localhost would pass. So st-api opens the
 * socket itself unless `host` is the name to check: for an address it sets `_host` to it; for a
 * servername other than host, mysql2 gets the servername as `host` and the socket goes to host.
 */
export function mysql2Transport(
  host: string,
  port: number,
  tls: MysqlTls | undefined,
): { host: string; port: number; ssl?: SslOptions; stream?: () => Socket } {
  if (tls === undefined) return { host, port };
  const ssl: SslOptions = {
    ca: tls.ca,
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    rejectUnauthorized: true,
    verifyIdentity: true,
    minVersion: 'TLSv1.2',
  };
  const checksAddress = isIP(tls.servername) !== 0;
  if (tls.servername === host && !checksAddress) return { host, port, ssl };
  const stream = (): Socket => {
    // noDelay and keepAlive: what mysql2 sets on its own sockets and skips for a given stream.
    const socket = connect({ host, port, noDelay: true, keepAlive: true });
    if (checksAddress) Object.assign(socket, { _host: tls.servername });
    return socket;
  };
  return { host: tls.servername, port, ssl, stream };
}

/** A DNS name to check the certificate against (an address would be checked as `host` already). */
export function isServerName(value: string): boolean {
  return (
    isIP(value) === 0 &&
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(value)
  );
}

function parsesAsCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

function parsesAsKey(pem: string): boolean {
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
}

function keyMatches(cert: string, key: string): boolean {
  try {
    createSecureContext({ cert, key });
    return true;
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}
