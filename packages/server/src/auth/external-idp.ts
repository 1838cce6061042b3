/**
 * Tokens from an external identity provider (OIDC/OAuth2): RS256 or ES256, checked against the
 * provider's published keys (JWKS, fetched and cached by jose, refetched when an unknown key id turns
 * up), its issuer and this server's audience. The user comes from one claim, the RustyDB roles from
 * another, through `jwks_role_map`. Such users exist only in their tokens: they have no password here.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import { RustyError } from '../errors/rusty-error.ts';
import { parseRoleMap, type ServerConfig } from '../config/config.ts';
import { CLOCK_TOLERANCE_S } from './tokens.ts';

export const EXTERNAL_ALGORITHMS = ['RS256', 'ES256'] as const;

export interface ExternalClaims {
  user: string;
  roles: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
  tokenId: string;
}

const USER_NAME = /^[\x21-\x7e]{1,128}$/;

export class ExternalIdentityProvider {
  readonly #keys: ReturnType<typeof createRemoteJWKSet>;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #userClaim: string;
  readonly #rolesClaim: string;
  readonly #roleMap: Map<string, string[]> | undefined;

  constructor(config: ServerConfig) {
    this.#keys = createRemoteJWKSet(new URL(config.jwks_url!), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
    });
    this.#issuer = config.jwks_issuer!;
    this.#audience = config.jwks_audience!;
    this.#userClaim = config.jwks_user_claim;
    this.#rolesClaim = config.jwks_roles_claim;
    this.#roleMap = config.jwks_role_map === undefined ? undefined : parseRoleMap(config.jwks_role_map);
  }

  /** True for a token this provider would sign (by its header); others are the server's own. */
  static claims(token: string): boolean {
    try {
      const { alg } = decodeProtectedHeader(token);
      return (EXTERNAL_ALGORITHMS as readonly string[]).includes(alg ?? '');
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<ExternalClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: [...EXTERNAL_ALGORITHMS],
        issuer: this.#issuer,
        audience: this.#audience,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new RustyError('AUTH_EXPIRED', 'token has expired');
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
    const user = payload[this.#userClaim];
    if (typeof user !== 'string' || !USER_NAME.test(user))
      throw new RustyError('AUTH_FAILED', 'invalid token');
    const iat = payload.iat;
    if (typeof iat === 'number' && iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) {
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
    return {
      user,
      roles: this.#rolesOf(payload[this.#rolesClaim]),
      expiresAt: payload.exp as number,
      tokenId: typeof payload.jti === 'string' ? payload.jti : '',
    };
  }

  /** The claim may be a list or a space-separated string; unmapped values give no role. */
  #rolesOf(claim: unknown): string[] {
    const values =
      typeof claim === 'string'
        ? claim.split(/\s+/)
        : Array.isArray(claim)
          ? claim.filter((v) => typeof v === 'string')
          : [];
    const roles = new Set<string>();
    for (const value of values as string[]) {
      if (value === '') continue;
      if (!this.#roleMap) roles.add(value);
      else for (const role of this.#roleMap.get(value) ?? []) roles.add(role);
    }
    return [...roles];
  }
}
