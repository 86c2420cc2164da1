// Redis over TLS: the files the configuration names, read once at start-up, and the words health and
// the logs use for a connection that failed its TLS handshake.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { readSecretFile, type SecretFileWarning } from '../../common/secret-file.ts';

/** What `redis.tls` holds once its files are read. */
export interface RedisTls {
  /** PEM of the CA(s) the server's certificate must chain to. */
  readonly ca: string;
  /** The name the server's certificate must carry; absent = the host connected to. */
  readonly servername?: string | undefined;
  /** Client certificate and key, for a Redis with tls-auth-clients yes. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** Set when others than its owner can read the key file: logged once at start-up. */
  readonly keyWarning?: SecretFileWarning | undefined;
}

/**
 * A file's text, or an error sentence naming the file (never its content). With `onSecretWarning` the
 * file is a private key, read through common/secret-file.ts.
 */
export function readTlsFile(path: string, onSecretWarning?: (warning: SecretFileWarning) => void): { text: string } | { problem: string } {
  try {
    return { text: onSecretWarning === undefined ? readFileSync(path, 'utf8') : readSecretFile(path, onSecretWarning) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { problem: `cannot read ${path} (${typeof code === 'string' ? code : 'error'})` };
  }
}

/** ioredis's `tls` (handed to tls.connect): modern versions only, the server's name checked. */
export function tlsConnectionOptions(tls: RedisTls, servername: string | undefined): ConnectionOptions {
  const name = tls.servername ?? servername;
  return {
    ca: tls.ca,
    minVersion: 'TLSv1.2',
    ...(name === undefined ? {} : { servername: name }),
    ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
  };
}

/** OpenSSL's verification results (X509_V_ERR_*) and Node's name check, as Node reports them in `code`. */
const CERTIFICATE_CODE = /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/;

/**
 * How health and the logs name a TLS failure: `certificate:<code>` when the server's certificate
 * was refused (wrong CA, wrong name, expired), `tls:<code>` for another handshake failure (a plain
 * Redis on the port, no shared protocol version); undefined for anything else.
 */
export function tlsFailure(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[A-Z0-9_]+$/.test(code)) return undefined;
  if (CERTIFICATE_CODE.test(code)) return `certificate:${code.toLowerCase()}`;
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `tls:${code.toLowerCase()}`;
  return undefined;
}
