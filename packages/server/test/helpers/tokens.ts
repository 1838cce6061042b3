/** Hand-made JWTs for auth tests, signed with the server's real secret or deliberately wrong. */
import { SignJWT, UnsecuredJWT } from 'jose';

export interface TokenSpec {
  sub?: string;
  /** Seconds since the epoch. */
  exp?: number;
  iat?: number;
  iss?: string;
  aud?: string;
  alg?: string;
  /** Further claims; a token the server should accept needs the identity of a real one (identityOf). */
  claims?: Record<string, unknown>;
}

/** The claims binding a real token to its user and login (`uid`, `gen`, `sid`), to copy into a forged one. */
export function identityOf(token: string): Record<string, unknown> {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
    string,
    unknown
  >;
  return { uid: payload.uid, gen: payload.gen, sid: payload.sid, jti: `forged-${Math.random()}` };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export async function signToken(secret: Uint8Array, spec: TokenSpec = {}): Promise<string> {
  const iat = spec.iat ?? nowSeconds();
  const jwt = new SignJWT({ ...spec.claims })
    .setProtectedHeader({ alg: spec.alg ?? 'HS256', typ: 'JWT' })
    .setSubject(spec.sub ?? 'admin')
    .setIssuer(spec.iss ?? 'rustydb')
    .setAudience(spec.aud ?? 'rustydb')
    .setIssuedAt(iat);
  jwt.setExpirationTime(spec.exp ?? iat + 3600);
  return jwt.sign(secret);
}

/** A token with `alg: none` and no signature. */
export function unsignedToken(spec: TokenSpec = {}): string {
  const iat = spec.iat ?? nowSeconds();
  return new UnsecuredJWT({})
    .setSubject(spec.sub ?? 'admin')
    .setIssuer(spec.iss ?? 'rustydb')
    .setAudience(spec.aud ?? 'rustydb')
    .setIssuedAt(iat)
    .setExpirationTime(spec.exp ?? iat + 3600)
    .encode();
}
