// Why a TLS connection failed, in words on-call can act on (`certificate-untrusted`: check the CA
// file; `certificate-name-mismatch`: check servername). Node names verification failures by code;
// mysql2 replaces that code with HANDSHAKE_SSL_ERROR and keeps only Node's message, so both are read.

const BY_CODE: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate-untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate-untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate-untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate-untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate-untrusted',
  CERT_UNTRUSTED: 'certificate-untrusted',
  CERT_SIGNATURE_FAILURE: 'certificate-untrusted',
  CERT_HAS_EXPIRED: 'certificate-expired',
  CERT_NOT_YET_VALID: 'certificate-not-yet-valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate-name-mismatch',
  // mysql2: the server does not offer TLS at all (never a silent fallback to plain).
  HANDSHAKE_NO_SSL_SUPPORT: 'not-offered-by-server',
};

// OpenSSL's verify messages (X509_verify_cert_error_string; "self signed" before OpenSSL 3) and Node's altname message.
const BY_MESSAGE: readonly (readonly [RegExp, string])[] = [
  [/does not match certificate's altnames/, 'certificate-name-mismatch'],
  [/^certificate has expired$/, 'certificate-expired'],
  [/^certificate is not yet valid$/, 'certificate-not-yet-valid'],
  [
    /^(unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate( in certificate chain)?)$/,
    'certificate-untrusted',
  ],
];

/** `certificate-untrusted`, `certificate-name-mismatch`, … for a TLS failure; undefined for any other error. */
export function tlsFailure(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && BY_CODE[code] !== undefined) return BY_CODE[code];
  const message = error instanceof Error ? error.message : '';
  const known = BY_MESSAGE.find(([pattern]) => pattern.test(message));
  if (known !== undefined) return known[1];
  if (code === 'HANDSHAKE_SSL_ERROR' || (typeof code === 'string' && /^ERR_SSL_|^ERR_TLS_/.test(code))) return 'handshake-failed';
  return undefined;
}
