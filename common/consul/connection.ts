// How the watcher and the hooks reach their Consul agent: the consul CLI's environment variables,
// read as the Go API client reads them (hashicorp/consul api/api.go defaultConfig, NewClient,
// SetupTLSConfig), over the same settings in the program's JSON file. Each setting on its own: a
// non-empty variable wins over the file, the file over the default (the address has always come
// from CONSUL_HTTP_ADDR first). Every file named is read here, at start-up, so a CA, certificate or
// key that cannot be used is a configuration error naming the file, not a failure on first request.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { readSecretFile, type SecretFileWarning } from '../secret-file.ts';

/** The keys both programs' JSON files accept, each beside the variable that wins over it. */
export const consulConnectionFileKeys = {
  /** CONSUL_HTTP_ADDR: `host:port`, `http://host:port` or `https://host:port` (default 127.0.0.1:8500). */
  consulAddress: z
    .string()
    .regex(/^(https?:\/\/)?[^\s/]+$/, 'host:port, http://host:port or https://host:port')
    .optional(),
  /** CONSUL_HTTP_SSL: true talks HTTPS to the address, whatever its scheme (as the consul CLI). */
  consulSsl: z.boolean().optional(),
  /** CONSUL_HTTP_SSL_VERIFY: false accepts any certificate. Never in production; logged as a warning. */
  consulSslVerify: z.boolean().optional(),
  /** CONSUL_CACERT: PEM file of the CA(s) that signed the agent's certificate (instead of the system's). */
  consulCaFile: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /** CONSUL_CAPATH: a directory of PEM CA files; consulCaFile wins when both are set. */
  consulCaPath: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /** CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY: mutual TLS, for an agent with verify_incoming. Both or neither. */
  consulClientCertFile: z.string().regex(/^\//, 'must be an absolute path').optional(),
  consulClientKeyFile: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /** CONSUL_TLS_SERVER_NAME: the name to check the agent's certificate against (default: the address's host). */
  consulTlsServerName: z.string().min(1).max(253).optional(),
};

export type ConsulConnectionFileSettings = {
  [Key in keyof typeof consulConnectionFileKeys]?: z.output<(typeof consulConnectionFileKeys)[Key]>;
};

/** What ConsulClient needs to talk TLS; absent for plain HTTP. */
export interface ConsulTlsSettings {
  /** PEM certificates to trust instead of the system's, and where they came from (for error messages). */
  readonly ca: { readonly pems: readonly string[]; readonly source: string } | undefined;
  readonly clientCert: { readonly cert: string; readonly key: string } | undefined;
  /** The name the certificate must carry; undefined: the address's host. */
  readonly serverName: string | undefined;
  readonly verify: boolean;
}

export interface ConsulConnection {
  /** `host:port` for HTTP, `https://host:port` for HTTPS. */
  readonly address: string;
  readonly tls: ConsulTlsSettings | undefined;
  /** Said once per run by the program's logger: settings that work but should not be left so. */
  readonly warnings: readonly string[];
}

type Fail = (message: string) => Error;

/** One setting: its variable if set and non-empty (as api.DefaultConfig), else the file's key. */
interface Source<T> {
  readonly value: T;
  /** `CONSUL_CACERT` or `consulCaFile in /etc/st-api/dns-watcher.json`. */
  readonly from: string;
}

export function consulConnection(
  env: NodeJS.ProcessEnv,
  file: ConsulConnectionFileSettings,
  configFile: string,
  fail: Fail,
): ConsulConnection {
  const pick = <Key extends keyof ConsulConnectionFileSettings>(variable: string, key: Key): Source<string> | undefined => {
    const fromEnv = env[variable];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, from: variable };
    const fromFile = file[key];
    return fromFile === undefined ? undefined : { value: String(fromFile), from: `${key} in ${configFile}` };
  };
  const flag = (variable: string, key: 'consulSsl' | 'consulSslVerify'): Source<boolean> | undefined => {
    const picked = pick(variable, key);
    if (picked === undefined) return undefined;
    const value = parseGoBool(picked.value);
    // Go logs and goes on (an unparsable CONSUL_HTTP_SSL_VERIFY even turns verification off); here it stops the run.
    if (value === undefined)
      throw fail(`${picked.from} must be true or false (as the consul CLI reads it), not ${JSON.stringify(picked.value)}`);
    return { value, from: picked.from };
  };

  const warnings: string[] = [];
  const address = pick('CONSUL_HTTP_ADDR', 'consulAddress')?.value ?? '127.0.0.1:8500';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https')
    throw fail(`the Consul address ${address} has an unknown scheme (http or https)`);
  const hostPort = scheme === undefined ? address : address.slice(scheme.length + 3);
  // CONSUL_HTTP_SSL=true makes even an http:// address talk TLS (NewClient: "never revert to http if TLS was explicitly requested").
  const https = scheme === 'https' || flag('CONSUL_HTTP_SSL', 'consulSsl')?.value === true;

  const verify = flag('CONSUL_HTTP_SSL_VERIFY', 'consulSslVerify');
  const caFile = pick('CONSUL_CACERT', 'consulCaFile');
  const caPath = pick('CONSUL_CAPATH', 'consulCaPath');
  const certFile = pick('CONSUL_CLIENT_CERT', 'consulClientCertFile');
  const keyFile = pick('CONSUL_CLIENT_KEY', 'consulClientKeyFile');
  const serverName = pick('CONSUL_TLS_SERVER_NAME', 'consulTlsServerName');

  // Read even for plain HTTP, as the Go client does (SetupTLSConfig runs whatever the scheme).
  const ca = caFile !== undefined ? readCaFile(caFile, fail) : caPath !== undefined ? readCaPath(caPath, fail) : undefined;
  let clientCert: ConsulTlsSettings['clientCert'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const given = certFile ?? keyFile;
    throw fail(
      `${given?.from} is set without its pair: a client certificate needs both CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (consulClientCertFile and consulClientKeyFile)`,
    );
  }
  if (certFile !== undefined && keyFile !== undefined) {
    const key = readPem(keyFile, 'client key', fail, (warning) => warnings.push(warning.message));
    clientCert = { cert: readPem(certFile, 'client certificate', fail), key };
    try {
      createSecureContext({ cert: clientCert.cert, key: clientCert.key });
    } catch (error) {
      throw fail(
        `the Consul client certificate ${certFile.value} (${certFile.from}) and key ${keyFile.value} (${keyFile.from}) cannot be used together: ${(error as Error).message}`,
      );
    }
  }

  if (verify?.value === false) {
    warnings.push(
      `${verify.from} is false: the Consul agent's certificate is not verified, anyone on the path can read and change what the agent says; never in production`,
    );
  }
  if (!https) {
    const tlsOnly = [caFile, caPath, certFile, serverName].filter((s) => s !== undefined).map((s) => s.from);
    if (tlsOnly.length > 0) {
      warnings.push(
        `${tlsOnly.join(', ')} set, but the Consul address ${address} is plain HTTP: nothing is encrypted; use CONSUL_HTTP_ADDR=https://… (consulAddress) or CONSUL_HTTP_SSL=true`,
      );
    }
    return { address: hostPort, tls: undefined, warnings };
  }
  return {
    address: `https://${hostPort}`,
    tls: {
      ca,
      clientCert,
      // api.SetupTLSConfig drops a port from the server name.
      serverName: serverName === undefined ? undefined : withoutPort(serverName.value),
      verify: verify?.value ?? true,
    },
    warnings,
  };
}

/** strconv.ParseBool's spellings. */
function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

function withoutPort(name: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(name);
  if (bracketed !== null) return bracketed[1] ?? name;
  return isIP(name) === 6 ? name : name.replace(/:\d+$/, '');
}

/** With `onSecretWarning` the file is a private key, read through common/secret-file.ts. */
function readPem(source: Source<string>, what: string, fail: Fail, onSecretWarning?: (warning: SecretFileWarning) => void): string {
  let text: string;
  try {
    text = onSecretWarning === undefined ? readFileSync(source.value, 'utf8') : readSecretFile(source.value, onSecretWarning);
  } catch (error) {
    throw fail(`cannot read the Consul ${what} ${source.value} (${source.from}): ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!text.includes('-----BEGIN ')) throw fail(`the Consul ${what} ${source.value} (${source.from}) is not PEM`);
  return text;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificatesIn(text: string, file: string, from: string, fail: Fail): string[] {
  const pems = text.match(CERTIFICATE) ?? [];
  if (pems.length === 0) throw fail(`the Consul CA file ${file} (${from}) holds no PEM certificate`);
  try {
    createSecureContext({ ca: pems });
  } catch (error) {
    throw fail(`the Consul CA file ${file} (${from}) holds a certificate that does not parse: ${(error as Error).message}`);
  }
  return pems;
}

function readCaFile(source: Source<string>, fail: Fail): ConsulTlsSettings['ca'] {
  const text = readPem(source, 'CA file', fail);
  return { pems: certificatesIn(text, source.value, source.from, fail), source: `the CA in ${source.value}` };
}

/** Every file in the directory (not below it), each a PEM of certificates, as go-rootcerts' LoadCAPath wants. */
function readCaPath(source: Source<string>, fail: Fail): ConsulTlsSettings['ca'] {
  let names: string[];
  try {
    names = readdirSync(source.value).sort();
  } catch (error) {
    throw fail(`cannot read the Consul CA directory ${source.value} (${source.from}): ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const pems: string[] = [];
  for (const name of names) {
    const path = join(source.value, name);
    let isFile: boolean;
    try {
      isFile = statSync(path).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) continue;
    pems.push(...certificatesIn(readPem({ value: path, from: source.from }, 'CA file', fail), path, source.from, fail));
  }
  if (pems.length === 0) throw fail(`the Consul CA directory ${source.value} (${source.from}) holds no certificate file`);
  return { pems, source: `the CAs in ${source.value}` };
}
