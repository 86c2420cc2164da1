// The token on st-api's own manifest URLs (tokenized-manifest delivery). It is a path token, like
// nginx's, so the relative variant URIs of a master playlist resolve back to st-api with it:
//
//   /v1/manifests/<cdn>/<key id>/<expires>/<hmac>/vod/<title>/hls/480p/master.m3u8
//   /v1/manifests/<cdn>/<key id>/<expires>/<hmac>/vod/<title>/hls/480p/480p/index.m3u8
//
// hmac = base64url(HMAC-SHA256(key, "<cdn>\n<expires>\n<scope>")), scope = the manifest's directory.
// Whoever holds this URL gets fresh CDN tokens inside the manifests, so it is checked as strictly as
// a CDN token: constant-time, expiry, and the requested path must lie under the signed scope.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createKeyring, type KeyEntry, type Keyring } from '../signing/keyring.ts';

export const MANIFEST_ROUTE = '/v1/manifests';

export interface ManifestTokenClaims {
  cdn: string;
  /** Epoch seconds. */
  expires: number;
  /** Percent-encoded directory, starts and ends with `/`. */
  scopePath: string;
}

export type ManifestTokenCheck = { ok: true; scopePath: string } | { ok: false; why: 'invalid' | 'expired' };

export class ManifestTokens {
  readonly #keyring: Keyring<Buffer>;

  constructor(keys: ReadonlyArray<KeyEntry<string>>) {
    this.#keyring = createKeyring(keys.map((key) => ({ ...key, material: Buffer.from(key.material, 'utf8') })));
  }

  /** The path prefix ahead of the scope: `/v1/manifests/<cdn>/<kid>/<expires>/<hmac>`. */
  pathPrefix(claims: ManifestTokenClaims): string {
    const { active } = this.#keyring;
    return `${MANIFEST_ROUTE}/${claims.cdn}/${active.id}/${claims.expires}/${hmac(active.material, claims)}`;
  }

  /**
   * Checks a token against the requested path (below the token, starting with `/`). The scope is
   * not in the URL, so each directory prefix of the path is tried (a handful of HMACs at most).
   */
  check(token: { cdn: string; keyId: string; expires: string; hmac: string }, path: string, nowMs: number): ManifestTokenCheck {
    const key = this.#keyring.keys.find((entry) => entry.id === token.keyId);
    const expires = /^[0-9]{1,12}$/.test(token.expires) ? Number(token.expires) : Number.NaN;
    if (key === undefined || Number.isNaN(expires) || !/^[A-Za-z0-9_-]{43}$/.test(token.hmac)) return { ok: false, why: 'invalid' };
    const given = Buffer.from(token.hmac, 'base64url');
    for (let end = path.indexOf('/', 1); end !== -1; end = path.indexOf('/', end + 1)) {
      const scopePath = path.slice(0, end + 1);
      const expected = Buffer.from(hmac(key.material, { cdn: token.cdn, expires, scopePath }), 'base64url');
      if (timingSafeEqual(given, expected)) {
        // Checked after the signature, so an expiry answer is only ever given for a genuine token.
        return expires * 1000 <= nowMs ? { ok: false, why: 'expired' } : { ok: true, scopePath };
      }
    }
    return { ok: false, why: 'invalid' };
  }
}

function hmac(key: Buffer, claims: ManifestTokenClaims): string {
  return createHmac('sha256', key).update(`${claims.cdn}\n${claims.expires}\n${claims.scopePath}`).digest('base64url');
}
