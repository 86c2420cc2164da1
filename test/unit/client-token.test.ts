import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import jwt from 'jsonwebtoken';
import { createTokenVerifier, tokenKey } from '../../api/auth/client-token.ts';
import { AppError, type ProblemCode } from '../../api/errors.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ISSUER = 'https://auth.example.com/';
const AUDIENCE = 'st-api';

const verify = createTokenVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  leewaySeconds: 30,
  maxTokenBytes: 4096,
  keys: [
    { kid: 'rs-1', algorithm: 'RS256', key: tokenKey('RS256', rsaPublicPem) },
    { kid: 'ec-1', algorithm: 'ES256', key: tokenKey('ES256', ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()) },
  ],
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);
/** A token from the issuer for user-1 with rs-1's claims, signed with `key` (`overrides` change any option). */
const signedWith = (key: KeyObject, overrides: jwt.SignOptions = {}, payload: { exp?: number; pad?: string } = {}) =>
  jwt.sign(payload, key, {
    algorithm: 'RS256',
    keyid: 'rs-1',
    issuer: ISSUER,
    audience: AUDIENCE,
    subject: 'user-1',
    ...(payload.exp === undefined ? { expiresIn: 300 } : {}),
    ...overrides,
  });
const good = (overrides: jwt.SignOptions = {}, payload: { exp?: number; pad?: string } = {}) =>
  signedWith(rsa.privateKey, overrides, payload);

function codeOf(authorization: string | undefined): ProblemCode | 'accepted' {
  try {
    verify(authorization);
    return 'accepted';
  } catch (error) {
    assert.ok(error instanceof AppError, `not an AppError: ${String(error)}`);
    assert.equal(error.status, 401);
    return error.code;
  }
}

describe('client token verification', () => {
  it('when the token is a valid RS256 token, then the viewer is its subject', () => {
    assert.deepEqual(verify(`Bearer ${good()}`), { userId: 'user-1' });
  });
  it('when the token is a valid ES256 token, then it is accepted with the EC key', () => {
    const token = signedWith(ec.privateKey, { algorithm: 'ES256', keyid: 'ec-1', subject: 'user-2', expiresIn: 60 });
    assert.deepEqual(verify(`Bearer ${token}`), { userId: 'user-2' });
  });
  it('when the scheme is written in any case or padded with spaces, then the token is still accepted (RFC 9110 §11.1)', () => {
    for (const scheme of ['bearer ', 'BEARER ', 'bEaReR ', 'Bearer   ', 'Bearer\t'])
      assert.deepEqual(verify(`${scheme}${good()}`), { userId: 'user-1' });
    assert.deepEqual(verify(`Bearer ${good()}  `), { userId: 'user-1' }, 'trailing blanks');
  });
  it('when the scheme is another one, glued to the token, or the token carries inner spaces, then TOKEN_MALFORMED', () => {
    for (const header of [
      `Basic ${good()}`,
      `Bearer${good()}`,
      `Bearers ${good()}`,
      `Bearer ${good().replace('.', '. ')}`,
      `Bearer ${'x'.repeat(40)}`,
    ]) {
      assert.equal(codeOf(header), 'TOKEN_MALFORMED', header.slice(0, 12));
    }
  });
  it('when padding is used to smuggle an oversized token, then TOKEN_MALFORMED all the same', () => {
    assert.equal(codeOf(`bearer      ${good({}, { pad: 'x'.repeat(5000) })}`), 'TOKEN_MALFORMED');
  });
  it('when the header is missing, then TOKEN_MISSING', () => {
    assert.equal(codeOf(undefined), 'TOKEN_MISSING');
  });
  it('when the scheme is not Bearer or the token is not three parts, then TOKEN_MALFORMED', () => {
    assert.equal(codeOf(`Basic ${Buffer.from('a:b').toString('base64')}`), 'TOKEN_MALFORMED');
    assert.equal(codeOf('Bearer not-a-jwt'), 'TOKEN_MALFORMED');
    assert.equal(codeOf(`Bearer ${b64('x').slice(0, 3)}.!!.??`), 'TOKEN_MALFORMED');
    assert.equal(codeOf(`Bearer ${Buffer.from('{not json').toString('base64url')}.${b64({ sub: 'x' })}.c2ln`), 'TOKEN_MALFORMED');
  });
  it('when the token is oversized, then TOKEN_MALFORMED without parsing it', () => {
    assert.equal(codeOf(`Bearer ${good({}, { pad: 'x'.repeat(5000) })}`), 'TOKEN_MALFORMED');
  });
  it('when alg is none, then TOKEN_ALGORITHM_REJECTED', () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'user-1', iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 60 })}.`;
    assert.equal(codeOf(`Bearer ${unsigned}`), 'TOKEN_ALGORITHM_REJECTED');
  });
  it('when the token is HS256 signed with the RS public key as the secret, then TOKEN_ALGORITHM_REJECTED', () => {
    const header = b64({ alg: 'HS256', typ: 'JWT', kid: 'rs-1' });
    const payload = b64({ sub: 'attacker', iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 60 });
    const signature = createHmac('sha256', rsaPublicPem).update(`${header}.${payload}`).digest('base64url');
    assert.equal(codeOf(`Bearer ${header}.${payload}.${signature}`), 'TOKEN_ALGORITHM_REJECTED');
  });
  it('when the header names critical extensions (crit), then TOKEN_MALFORMED even if the signature verifies (RFC 7515 §4.1.11)', () => {
    for (const crit of [['exp-ext'], []]) {
      const token = good({ expiresIn: 60, header: { alg: 'RS256', crit } });
      assert.equal(codeOf(`Bearer ${token}`), 'TOKEN_MALFORMED', JSON.stringify(crit));
    }
  });
  it('when alg is long or odd text, then the refusal does not echo it', () => {
    const hostile = `${b64({ alg: `<script>${'A'.repeat(500)}`, typ: 'JWT' })}.${b64({ sub: 'x' })}.sig`;
    try {
      verify(`Bearer ${hostile}`);
      assert.fail('accepted');
    } catch (error) {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'TOKEN_ALGORITHM_REJECTED');
      assert.equal(error.detail, "No accepted key for the token's alg");
    }
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x' })}.`;
    assert.throws(
      () => verify(`Bearer ${none}`),
      (error: unknown) => error instanceof AppError && error.detail === 'No accepted key for alg "none"',
    );
  });
  it('when the token is signed by another key, then TOKEN_SIGNATURE_INVALID', () => {
    const forged = signedWith(other.privateKey, { expiresIn: 60 });
    assert.equal(codeOf(`Bearer ${forged}`), 'TOKEN_SIGNATURE_INVALID');
  });
  it('when the token expired beyond the leeway, then TOKEN_EXPIRED; within the leeway it is accepted', () => {
    assert.equal(codeOf(`Bearer ${good({}, { exp: nowSeconds() - 120 })}`), 'TOKEN_EXPIRED');
    assert.equal(codeOf(`Bearer ${good({}, { exp: nowSeconds() - 10 })}`), 'accepted');
  });
  it('when nbf is in the future beyond the leeway, then TOKEN_NOT_YET_VALID', () => {
    assert.equal(codeOf(`Bearer ${good({ notBefore: 300 })}`), 'TOKEN_NOT_YET_VALID');
  });
  it('when iss or aud is wrong, then TOKEN_CLAIMS_INVALID', () => {
    assert.equal(codeOf(`Bearer ${good({ issuer: 'https://evil.example.com/' })}`), 'TOKEN_CLAIMS_INVALID');
    assert.equal(codeOf(`Bearer ${good({ audience: 'another-api' })}`), 'TOKEN_CLAIMS_INVALID');
  });
  it('when the token has no exp or a non-user subject, then TOKEN_CLAIMS_INVALID', () => {
    assert.equal(
      codeOf(`Bearer ${jwt.sign({}, rsa.privateKey, { algorithm: 'RS256', issuer: ISSUER, audience: AUDIENCE, subject: 'user-1' })}`),
      'TOKEN_CLAIMS_INVALID',
    );
    assert.equal(codeOf(`Bearer ${good({ subject: '../../etc/passwd x' })}`), 'TOKEN_CLAIMS_INVALID');
  });
});

describe('verified-token memory', () => {
  it('when a verified token is presented again after it expired, then it is refused, not served from memory', () => {
    let clock = Date.now();
    const verifyAt = createTokenVerifier(
      {
        issuer: ISSUER,
        audience: AUDIENCE,
        leewaySeconds: 30,
        maxTokenBytes: 4096,
        keys: [{ kid: 'rs-1', algorithm: 'RS256', key: tokenKey('RS256', rsaPublicPem) }],
      },
      () => clock,
    );
    const token = `Bearer ${good({}, { exp: Math.floor(clock / 1000) + 20 })}`;
    assert.deepEqual(verifyAt(token), { userId: 'user-1' });
    clock += 40_000; // past exp, inside the leeway: still accepted
    assert.deepEqual(verifyAt(token), { userId: 'user-1' });
    clock += 20_000; // past exp + leeway
    assert.throws(
      () => verifyAt(token),
      (error: unknown) => error instanceof AppError && error.code === 'TOKEN_EXPIRED',
    );
  });
});

describe('client-token key rotation', () => {
  // The auth service rotates: the new key is added next to the old one, tokens signed by either
  // verify until the old one is removed.
  const oldKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const newKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = (pair: typeof oldKey) => pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const verifierWith = (keys: { kid?: string; pair: typeof oldKey }[]) =>
    createTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      leewaySeconds: 30,
      maxTokenBytes: 4096,
      keys: keys.map(({ kid, pair }) => ({ kid, algorithm: 'RS256' as const, key: tokenKey('RS256', publicPem(pair)) })),
    });
  const signWith = (pair: typeof oldKey, options: jwt.SignOptions = {}) =>
    `Bearer ${jwt.sign({}, pair.privateKey, { algorithm: 'RS256', issuer: ISSUER, audience: AUDIENCE, subject: 'user-9', expiresIn: 300, ...options })}`;
  const codeWith = (verifier: ReturnType<typeof verifierWith>, authorization: string): ProblemCode | 'accepted' => {
    try {
      verifier(authorization);
      return 'accepted';
    } catch (error) {
      assert.ok(error instanceof AppError, String(error));
      return error.code;
    }
  };

  it('when a token without kid is signed by the second key, then the first key mismatches and the next one verifies it', () => {
    const verifier = verifierWith([
      { kid: 'auth-2025', pair: oldKey },
      { kid: 'auth-2026', pair: newKey },
    ]);
    assert.deepEqual(verifier(signWith(newKey)), { userId: 'user-9' });
    assert.deepEqual(verifier(signWith(oldKey)), { userId: 'user-9' });
  });

  it('when a token without kid is expired, then the key that verifies its signature says so (TOKEN_EXPIRED), not the mismatch before it', () => {
    const verifier = verifierWith([
      { kid: 'auth-2025', pair: oldKey },
      { kid: 'auth-2026', pair: newKey },
    ]);
    const expired = `Bearer ${jwt.sign({ exp: nowSeconds() - 600 }, newKey.privateKey, { algorithm: 'RS256', issuer: ISSUER, audience: AUDIENCE, subject: 'user-9' })}`;
    assert.equal(codeWith(verifier, expired), 'TOKEN_EXPIRED');
  });

  it('when a token names its kid, then only that key is tried: the right key verifies, another key signing under that kid is TOKEN_SIGNATURE_INVALID', () => {
    const verifier = verifierWith([
      { kid: 'auth-2025', pair: oldKey },
      { kid: 'auth-2026', pair: newKey },
    ]);
    assert.equal(codeWith(verifier, signWith(newKey, { keyid: 'auth-2026' })), 'accepted');
    // Signed by a configured key, but not the one its kid names: no fallback to the other kid.
    assert.equal(codeWith(verifier, signWith(oldKey, { keyid: 'auth-2026' })), 'TOKEN_SIGNATURE_INVALID');
  });

  it('when a token names a kid no configured key has (a removed or unknown key), then TOKEN_ALGORITHM_REJECTED', () => {
    const verifier = verifierWith([{ kid: 'auth-2026', pair: newKey }]);
    assert.equal(codeWith(verifier, signWith(oldKey, { keyid: 'auth-2025' })), 'TOKEN_ALGORITHM_REJECTED');
    // Even one signed by a configured key: the kid decides which keys may verify it.
    assert.equal(codeWith(verifier, signWith(newKey, { keyid: 'auth-2099' })), 'TOKEN_ALGORITHM_REJECTED');
  });

  it('when a configured key has no kid, then it is tried for tokens with any kid', () => {
    const verifier = verifierWith([{ kid: 'auth-2025', pair: oldKey }, { pair: newKey }]);
    assert.equal(codeWith(verifier, signWith(newKey, { keyid: 'whatever-the-auth-service-says' })), 'accepted');
  });

  it('when no configured key verifies the signature, then TOKEN_SIGNATURE_INVALID after every key was tried', () => {
    const verifier = verifierWith([
      { kid: 'auth-2025', pair: oldKey },
      { kid: 'auth-2026', pair: newKey },
    ]);
    assert.equal(codeWith(verifier, signWith(other)), 'TOKEN_SIGNATURE_INVALID');
  });
});
