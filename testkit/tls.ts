// A throwaway certificate authority for tests, made by the openssl CLI at test time (nothing secret
// is committed): a CA, server certificates naming loopback and any service names, client
// certificates for mutual TLS, and the bad cases a TLS test needs (another CA, a key that does not
// match, a certificate that expires soon). Every file lands in the caller's temp dir with mode 0600.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';

export type KeyType = 'ec' | 'rsa';

export interface CertificateFiles {
  /** PEM certificate chain as a server sends it: here the leaf alone, as the CA signs it directly. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Hex serial, as openssl and node:crypto print it (upper case). */
  readonly serial: string;
}

export interface TestCa {
  readonly dir: string;
  readonly name: string;
  /** PEM of the CA certificate: what a client trusts. */
  readonly caFile: string;
  readonly caPem: string;
  /**
   * A server certificate for `names` (DNS names; IP addresses become IP SANs). Loopback
   * (`localhost`, 127.0.0.1, ::1) is included unless `loopback: false`, so a test may connect by address.
   */
  server(label: string, names?: readonly string[], options?: CertificateOptions): CertificateFiles;
  /** A client certificate (extendedKeyUsage clientAuth) with `commonName` as its subject. */
  client(label: string, commonName: string, options?: CertificateOptions): CertificateFiles;
}

export interface CertificateOptions {
  readonly keyType?: KeyType;
  /** Validity in days from now (default 30). */
  readonly days?: number;
  /**
   * Server certificates: false leaves loopback out, so only `names` match (a client that connects
   * to 127.0.0.1 must then check a name it was given, e.g. the service name of a discovered address,
   * or the address itself as an IP entry); the label is the subject when no DNS name is given.
   */
  readonly loopback?: boolean;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(file: string, keyType: KeyType, cwd: string): void {
  if (keyType === 'ec') openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], cwd);
  else openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file], cwd);
  chmodSync(file, 0o600);
}

const isIpAddress = (name: string): boolean => /^[\d.]+$/.test(name) || name.includes(':');

/** Makes a CA named `name` in `dir` (which must exist); certificates it signs land beside it. */
export function createTestCa(dir: string, name = 'st-api test CA'): TestCa {
  const caKey = join(dir, `${slug(name)}.key`);
  const caFile = join(dir, `${slug(name)}.crt`);
  newKey(caKey, 'ec', dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKey,
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      caFile,
    ],
    dir,
  );
  const caPem = readFileSync(caFile, 'utf8');

  const issue = (label: string, subject: string, extensions: string, options: CertificateOptions = {}): CertificateFiles => {
    const base = join(dir, slug(label));
    const keyFile = `${base}.key`;
    const csr = `${base}.csr`;
    const leaf = `${base}.leaf.pem`;
    const ext = `${base}.ext`;
    newKey(keyFile, options.keyType ?? 'ec', dir);
    openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${subject}`, '-out', csr], dir);
    writeFileSync(ext, extensions);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-sha256',
        '-days',
        String(options.days ?? 30),
        '-extfile',
        ext,
        '-out',
        leaf,
      ],
      dir,
    );
    // The chain a server sends: the leaf (the CA signs it directly; a root is never sent).
    const certFile = `${base}.crt`;
    const leafPem = readFileSync(leaf, 'utf8');
    writeFileSync(certFile, leafPem, { mode: 0o600 });
    return { certFile, keyFile, serial: new X509Certificate(leafPem).serialNumber.toUpperCase() };
  };

  return {
    dir,
    name,
    caFile,
    caPem,
    server(label, names = [], options) {
      const all = [...new Set([...(options?.loopback === false ? [] : ['localhost', '127.0.0.1', '::1']), ...names])];
      const san = all.map((n) => (isIpAddress(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      const subject = names.find((n) => !isIpAddress(n)) ?? (options?.loopback === false ? slug(label) : 'localhost');
      return issue(
        label,
        subject,
        `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`,
        options,
      );
    },
    client(label, commonName, options) {
      return issue(label, commonName, `extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`, options);
    },
  };
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-');
}
