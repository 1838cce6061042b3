/** Access tokens: HS256 JWTs naming the user, verified once per connection (not per message). */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { RustyError } from '../errors/rusty-error.ts';

export const TOKEN_ISSUER = 'rustydb';
export const TOKEN_AUDIENCE = 'rustydb';

/** How far a token's issue time may lie in the future (clock differences between machines), seconds. */
export const CLOCK_TOLERANCE_S = 30;

/** Whom a token is issued to: a user as they are now (see UserRecord). */
export interface TokenSubject {
  username: string;
  id: string;
  tokenGeneration: number;
}

export interface TokenClaims {
  user: string;
  /** `uid`: the id of the user the token was issued to. */
  userId: string;
  /** `gen`: the user's token generation when it was issued. */
  generation: number;
  /**
   * `sid`: the login the token belongs to. A login's first token and every token refreshed from it
   * share it, so that logging out ends them all.
   */
  loginId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  /** Seconds since the epoch. */
  issuedAt: number;
  /** The token's own id, `jti`. */
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

  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /**
   * A token bound to the user's id and current token generation.
   * @param loginId the login a refreshed token continues; a new login when omitted
   */
  async issue(
    user: TokenSubject,
    loginId: string = randomUUID(),
  ): Promise<{ token: string; expiresAt: Date; tokenId: string; loginId: string }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.#ttlSeconds;
    const tokenId = randomUUID();
    const token = await new SignJWT({ uid: user.id, gen: user.tokenGeneration, sid: loginId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.username)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(tokenId)
      .sign(this.#secret);
    return { token, expiresAt: new Date(exp * 1000), tokenId, loginId };
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
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'uid', 'gen', 'sid'],
      });
      const { uid, gen, sid, jti } = payload;
      // Tokens of older versions carry no user id or generation: their holders log in again.
      if (typeof uid !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
        throw new Error('missing identity');
      }
      if (typeof gen !== 'number' || !Number.isSafeInteger(gen)) throw new Error('bad generation');
      claims = {
        user: payload.sub!,
        userId: uid,
        generation: gen,
        loginId: sid,
        expiresAt: payload.exp!,
        issuedAt: payload.iat!,
        tokenId: jti,
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
