// The one interface every CDN token scheme implements. The playback use case
// only ever sees this; each scheme's quirks stay in its own file.

export interface SignRequest {
  /** Scheme and host the edge serves, e.g. `https://d111111abcdef8.cloudfront.net`. No trailing slash. */
  origin: string;
  /** Percent-encoded path of the manifest, starting with `/`. Signed byte for byte, never re-encoded. */
  manifestPath: string;
  /** Percent-encoded directory the token must cover (manifest and every segment below it); starts and ends with `/`. */
  scopePath: string;
  /** Start of validity, already back-dated for clock skew by the caller. */
  notBefore: Date;
  expiresAt: Date;
  /** Optional viewer IP to bind the token to (only where the scheme and config ask for it). */
  clientIp?: string;
}

export interface SigningKeyInfo {
  id: string;
  /** When the key stops being usable (certificate/rotation deadline), if known. */
  notAfter?: Date;
}

/** A token as `name=value` pairs, already encoded for where it travels (query string or cookie). */
export type TokenPairs = Array<[string, string]>;

export interface UrlSigner {
  /** Scheme name: `cloudfront`, `akamai`, `nginx`, `wowza`. */
  readonly scheme: string;
  /** The key new URLs are signed with. */
  readonly activeKey: SigningKeyInfo;
  /** Query parameters that authorize every file under scopePath, in wire order. */
  queryToken(request: SignRequest): TokenPairs;
  /** The manifest URL with the query token: origin + manifestPath + `?` + queryToken. */
  sign(request: SignRequest): string;
  /**
   * Path token: segments to put ahead of the media path (`/t/<hash>/<expires>`), so every relative
   * URI a player resolves from the manifest carries it. Only schemes whose edge can read a token
   * from the path offer it (nginx).
   */
  pathToken?(request: SignRequest): string;
  /** Cookie token: the cookies the edge checks on every request under scopePath (CloudFront, Akamai). */
  cookieToken?(request: SignRequest): TokenPairs;
}
