// A certificate chain and its private key, read from the two PEM files an operator (or certbot)
// maintains, and checked the way a TLS handshake would need them: every certificate parses, the key
// parses, and the key belongs to the first certificate (the leaf). A failure is one sentence naming
// the file and the reason, never the file's contents.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { readSecretFile, type SecretFileWarning } from '../../common/secret-file.ts';

export interface TlsFiles {
  /** PEM, the full chain as the server sends it: the leaf first, then the intermediates. */
  readonly certFile: string;
  /** PEM private key of the leaf, unencrypted. */
  readonly keyFile: string;
}

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
  /** The leaf's serial in upper-case hex, as openssl and node:crypto print it. */
  readonly serial: string;
  readonly notAfter: Date;
  readonly subject: string;
  /** Of both files' bytes: the same digest means nothing changed on disk. */
  readonly digest: string;
}

export class CertificatePairError extends Error {
  /** The file at fault. */
  readonly file: string;
  constructor(file: string, message: string) {
    super(message);
    this.name = 'CertificatePairError';
    this.file = file;
  }
}

export function pairDigest(cert: string, key: string): string {
  return createHash('sha256').update(cert).update('\0').update(key).digest('hex');
}

/** The bytes of both files, for a cheap "has anything changed?" without parsing or warning (loading a changed pair warns). */
export function readPairDigest(files: TlsFiles): string {
  return pairDigest(
    readFileSync(files.certFile, 'utf8'),
    readSecretFile(files.keyFile, () => undefined),
  );
}

/** What the server's secure context is made from; the same for the first context and each rotation. */
export function secureContextOptions(pair: CertificatePair, minVersion: TlsMinVersion): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

/** Reads and checks both files; throws CertificatePairError naming the file at fault. */
export function loadCertificatePair(files: TlsFiles, onKeyWarning: (warning: SecretFileWarning) => void): CertificatePair {
  const { certFile, keyFile } = files;
  let cert: string;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch (error) {
    throw new CertificatePairError(certFile, `cannot read the certificate file ${certFile} (${errorCode(error)})`);
  }
  const blocks = cert.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new CertificatePairError(certFile, `the certificate file ${certFile} holds no PEM certificate`);
  const chain = blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new CertificatePairError(certFile, `certificate ${index + 1} in ${certFile} does not parse as an X.509 certificate`);
    }
  });
  const leaf = chain[0] as X509Certificate;

  let key: string;
  try {
    key = readSecretFile(keyFile, onKeyWarning);
  } catch (error) {
    throw new CertificatePairError(keyFile, `cannot read the key file ${keyFile} (${errorCode(error)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new CertificatePairError(
      keyFile,
      errorCode(error) === 'ERR_MISSING_PASSPHRASE'
        ? `the key file ${keyFile} is encrypted; give the key without a passphrase`
        : `the key file ${keyFile} does not hold a PEM private key`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CertificatePairError(
      keyFile,
      `the key in ${keyFile} does not match the certificate in ${certFile} (the leaf certificate must come first in the chain)`,
    );
  }
  try {
    // Whatever else OpenSSL would refuse when the server builds its context (a weak key, say).
    createSecureContext({ cert, key });
  } catch (error) {
    throw new CertificatePairError(certFile, `OpenSSL refuses the pair ${certFile} / ${keyFile} (${errorCode(error)})`);
  }
  return {
    cert,
    key,
    serial: leaf.serialNumber.toUpperCase(),
    notAfter: new Date(leaf.validTo),
    subject: leaf.subject.replace(/\n/g, ', '),
    digest: pairDigest(cert, key),
  };
}
