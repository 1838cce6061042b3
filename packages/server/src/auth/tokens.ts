/** Access tokens: HS256 JWTs naming the user, verified once per connection (not per message). */
import { createHmac, createSecretKey, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
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

/** Tokens whose signature was checked, kept: a client reconnecting with its token is not checked again. */
const VERIFIED_KEPT = 256;

export class TokenService {
  /** Imported once: jose imports a raw secret again on every call, which costs more than the HMAC. */
  readonly #secret: KeyObject;
  readonly #ttlSeconds: number;
  /**
   * The claims of tokens whose signature and header were checked, by token, oldest first. Only that
   * part is kept: a token signed with this server's secret stays signed with it, while its lifetime and
   * claims are checked again on every use (and the user and revocations by the authenticator).
   */
  readonly #verified = new Map<string, Readonly<Record<string, unknown>>>();

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
   * Synchronous HMAC over the compact form: every connection runs this once, and WebCrypto's
   * asynchronous job (what jose's verify uses) cost several times the HMAC itself.
   */
  async verify(token: string): Promise<TokenClaims> {
    return this.verifyNow(token);
  }

  /** `verify`, in this tick: nothing in it waits. */
  verifyNow(token: string): TokenClaims {
    const payload = this.#signedPayload(token);
    const now = Math.floor(Date.now() / 1000);
    const { sub, exp, iat, nbf, jti, uid, gen, sid } = payload;
    if (
      payload.iss !== TOKEN_ISSUER ||
      !namesAudience(payload.aud) ||
      typeof sub !== 'string' ||
      typeof exp !== 'number' ||
      typeof iat !== 'number' ||
      (nbf !== undefined && typeof nbf !== 'number') ||
      // Tokens of older versions carry no user id, login or generation: their holders log in again.
      typeof jti !== 'string' ||
      typeof uid !== 'string' ||
      typeof sid !== 'string' ||
      typeof gen !== 'number' ||
      !Number.isSafeInteger(gen)
    ) {
      throw invalidToken();
    }
    if (typeof nbf === 'number' && nbf > now) throw invalidToken();
    // A token dated in the future is forged or comes from a badly wrong clock either way.
    if (iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) throw invalidToken();
    if (exp <= now) throw new RustyError('AUTH_EXPIRED', 'token has expired');
    return {
      user: sub,
      userId: uid,
      generation: gen,
      loginId: sid,
      expiresAt: exp,
      issuedAt: iat,
      tokenId: jti,
    };
  }

  /** `#verifiedPayload`, remembered for the last VERIFIED_KEPT tokens that passed it. */
  #signedPayload(token: string): Readonly<Record<string, unknown>> {
    let payload = this.#verified.get(token);
    if (payload === undefined) {
      payload = Object.freeze(this.#verifiedPayload(token));
      if (this.#verified.size >= VERIFIED_KEPT) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(token, payload);
    }
    return payload;
  }

  /** The claims of a compact HS256 JWS signed with this server's secret; nothing else gets through. */
  #verifiedPayload(token: string): Record<string, unknown> {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw invalidToken();
    const [header, body, signature] = parts as [string, string, string];
    const expected = Buffer.from(
      createHmac('sha256', this.#secret).update(`${header}.${body}`).digest('base64url'),
    );
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidToken();
    const protectedHeader = parseObject(header);
    // `crit` names extensions the verifier must understand; this one understands none. `b64: false`
    // would change what was signed.
    if (protectedHeader.alg !== 'HS256' || 'crit' in protectedHeader || 'b64' in protectedHeader) {
      throw invalidToken();
    }
    return parseObject(body);
  }
}

/** base64url without padding, as compact JWS parts are written; never empty. */
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function invalidToken(): RustyError {
  return new RustyError('AUTH_FAILED', 'invalid token');
}

/** A JSON object from a base64url part; anything else is an invalid token. */
function parseObject(part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw invalidToken();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidToken();
  return value as Record<string, unknown>;
}

/** `aud` is this server's audience, alone or in a list. */
function namesAudience(aud: unknown): boolean {
  return aud === TOKEN_AUDIENCE || (Array.isArray(aud) && aud.includes(TOKEN_AUDIENCE));
}
