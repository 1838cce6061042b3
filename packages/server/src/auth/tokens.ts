/** Access tokens: HS256 JWTs naming the user, verified once per connection (not per message). */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { RustyError } from '../errors/rusty-error.ts';

export const TOKEN_ISSUER = 'rustydb';
export const TOKEN_AUDIENCE = 'rustydb';

export interface TokenClaims {
  user: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  tokenId: string;
}

export class TokenService {
  readonly #secret: Uint8Array;
  readonly #ttlSeconds: number;

  constructor(secret: Uint8Array, ttlSeconds: number) {
    this.#secret = secret;
    this.#ttlSeconds = ttlSeconds;
  }

  async issue(user: string): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.#ttlSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.#secret);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** Verifies signature, algorithm, issuer, audience and lifetime. */
  async verify(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#secret, {
        algorithms: ['HS256'],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      return { user: payload.sub!, expiresAt: payload.exp!, tokenId: payload.jti ?? '' };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new RustyError('AUTH_EXPIRED', 'token has expired');
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
  }
}
