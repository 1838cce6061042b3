/** Access tokens: HS256 JWTs naming the user, verified once per connection (not per message). */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { RustyError } from '../errors/rusty-error.ts';

export const TOKEN_ISSUER = 'rustydb';
export const TOKEN_AUDIENCE = 'rustydb';

/** How far a token's issue time may lie in the future (clock differences between machines), seconds. */
export const CLOCK_TOLERANCE_S = 30;

export interface TokenClaims {
  user: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  /** Seconds since the epoch. */
  issuedAt: number;
  /** The token's `jti`; empty when it has none (the server's own tokens always have one). */
  tokenId: string;
}

export class TokenService {
  /** Imported once: jose imports a raw secret again on every call, which costs more than the HMAC. */
  readonly #secret: KeyObject;
  readonly #ttlSeconds: number;

  constructor(secret: Uint8Array, ttlSeconds: number) {
    this.#secret = createSecretKey(secret);
    this.#ttlSeconds = ttlSeconds;
  }

  /**
   * @param notBefore the user's `tokensValidAfter`: a token is never dated earlier, so one issued in
   *   the second after a password change is not mistaken for one from before it.
   */
  async issue(user: string, notBefore = 0): Promise<{ token: string; expiresAt: Date; tokenId: string }> {
    const now = Math.max(Math.floor(Date.now() / 1000), notBefore);
    const exp = Math.floor(Date.now() / 1000) + this.#ttlSeconds;
    const tokenId = randomUUID();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(tokenId)
      .sign(this.#secret);
    return { token, expiresAt: new Date(exp * 1000), tokenId };
  }

  /**
   * Verifies signature, algorithm (HS256 only: `none` and every other algorithm are refused), issuer,
   * audience and lifetime: expired, not yet valid (`nbf`) and issued in the future (`iat`) are refused.
   */
  async verify(token: string): Promise<TokenClaims> {
    let claims: TokenClaims;
    try {
      const { payload } = await jwtVerify(token, this.#secret, {
        algorithms: ['HS256'],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      if (typeof payload.jti !== 'undefined' && typeof payload.jti !== 'string') throw new Error('bad jti');
      claims = {
        user: payload.sub!,
        expiresAt: payload.exp!,
        issuedAt: payload.iat!,
        tokenId: payload.jti ?? '',
      };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new RustyError('AUTH_EXPIRED', 'token has expired');
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
    // jose checks `iat` only when a maximum age is set; a token dated in the future is forged or
    // comes from a badly wrong clock either way.
    if (claims.issuedAt > Date.now() / 1000 + CLOCK_TOLERANCE_S) {
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
    return claims;
  }
}
