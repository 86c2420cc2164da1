// Redis over TLS: the files the configuration names, read once at start-up, and the words health and
// the logs use for a connection that failed its TLS handshake.
import { readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

/** What `redis.tls` holds once its files are read. */
export interface RedisTls {
  /** PEM of the CA(s) the server's certificate must chain to. */
  readonly ca: string;
  /** The name the server's certificate must carry; absent = the host connected to. */
  readonly servername?: string | undefined;
  /** Client certificate and key, for a Redis with tls-auth-clients yes. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** The key file's path and mode when group or others may read it: logged as a warning at start-up. */
  readonly looseKeyFile?: { readonly path: string; readonly mode: string } | undefined;
}

/** A file's text, or an error sentence naming the file (never its content). */
export function readTlsFile(path: string): { text: string } | { problem: string } {
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { problem: `cannot read ${path} (${typeof code === 'string' ? code : 'error'})` };
  }
}

/**
 * The mode as octal text when group or others may read the file, else undefined. The smallest local
 * check: common/secret-file.ts (on its way) is meant to replace it for every secret file.
 */
export function looseMode(path: string): string | undefined {
  try {
    const mode = statSync(path).mode & 0o777;
    return (mode & 0o044) === 0 ? undefined : `0${mode.toString(8)}`;
  } catch {
    return undefined;
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
