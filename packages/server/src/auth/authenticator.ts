/**
 * Logging in and checking tokens. Wrong credentials cost the same time whether or not the user exists:
 * an unknown user is checked against a decoy hash. A token is accepted only while its user exists, is
 * enabled, has not changed password since it was issued, and the token itself was not logged out.
 */
import { RustyError } from '../errors/rusty-error.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { decoyPasswordHash, verifyPassword } from './passwords.ts';
import type { TokenService } from './tokens.ts';
import type { UserStore } from './user-store.ts';
import type { TokenRevocations } from './token-revocations.ts';
import { ExternalIdentityProvider } from './external-idp.ts';

export interface Principal {
  user: string;
  roles: string[];
  /** Milliseconds since the epoch; undefined when authentication is off. */
  expiresAt?: number;
  /** The token's id (`jti`), when it has one. */
  tokenId?: string;
  /** True only when authentication is off: such a caller holds every privilege. */
  anonymous?: boolean;
  /** Authenticated by an external identity provider: the roles come from the token, not from a user here. */
  external?: boolean;
}

/** Where a login or token came from, for the audit log. */
export interface AuthContext {
  ip?: string;
  endpoint?: string;
  session?: string;
}

export const ANONYMOUS: Principal = Object.freeze({ user: 'anonymous', roles: ['admin'], anonymous: true });

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export class Authenticator {
  readonly #users: UserStore;
  readonly #tokens: TokenService;
  readonly #revocations: TokenRevocations | undefined;
  readonly #audit: AuditLog | undefined;
  readonly #idp: ExternalIdentityProvider | undefined;

  constructor(
    users: UserStore,
    tokens: TokenService,
    revocations?: TokenRevocations,
    audit?: AuditLog,
    idp?: ExternalIdentityProvider,
  ) {
    this.#users = users;
    this.#tokens = tokens;
    this.#revocations = revocations;
    this.#audit = audit;
    this.#idp = idp;
  }

  async login(username: string, password: string, context: AuthContext = {}): Promise<IssuedToken> {
    const user = await this.#users.find(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyPasswordHash()));
    if (!user || !ok || user.disabled) {
      this.#audit?.record({
        event: 'login.failure',
        user: username,
        ...context,
        details: {
          reason: !user ? 'unknown user' : user.disabled && ok ? 'user disabled' : 'wrong password',
        },
      });
      throw new RustyError('AUTH_FAILED', 'invalid username or password');
    }
    this.#audit?.record({ event: 'login.success', user: user.username, ...context });
    return this.#tokens.issue(user.username, user.tokensValidAfter);
  }

  /** Resolves a bearer token to the user it names, who must still exist and be enabled. */
  async authenticate(token: string, context: AuthContext = {}): Promise<Principal> {
    try {
      return await this.#check(token);
    } catch (err) {
      if (err instanceof RustyError) {
        this.#audit?.record({
          event: 'auth.failure',
          ...context,
          details: { code: err.code, reason: err.message },
        });
      }
      throw err;
    }
  }

  async #check(token: string): Promise<Principal> {
    if (this.#idp && ExternalIdentityProvider.claims(token)) {
      const external = await this.#idp.verify(token);
      if (external.tokenId && (await this.#revocations?.isRevoked(external.tokenId))) {
        throw new RustyError('AUTH_FAILED', 'token has been revoked; log in again');
      }
      return {
        user: external.user,
        roles: external.roles,
        expiresAt: external.expiresAt * 1000,
        external: true,
        ...(external.tokenId ? { tokenId: external.tokenId } : {}),
      };
    }
    const claims = await this.#tokens.verify(token);
    const user = await this.#users.find(claims.user);
    if (!user || user.disabled) throw new RustyError('AUTH_FAILED', 'invalid token');
    if (claims.issuedAt < user.tokensValidAfter) {
      throw new RustyError('AUTH_FAILED', 'token has been revoked; log in again');
    }
    if (claims.tokenId && (await this.#revocations?.isRevoked(claims.tokenId))) {
      throw new RustyError('AUTH_FAILED', 'token has been revoked; log in again');
    }
    return {
      user: user.username,
      roles: user.roles,
      expiresAt: claims.expiresAt * 1000,
      ...(claims.tokenId ? { tokenId: claims.tokenId } : {}),
    };
  }

  /** A new token for the holder of a valid one (the old one stays valid until it expires or is logged out). */
  async refresh(principal: Principal, context: AuthContext = {}): Promise<IssuedToken> {
    if (principal.external) {
      throw new RustyError('INVALID_MESSAGE', 'tokens of the identity provider are refreshed there');
    }
    const user = await this.#users.find(principal.user);
    if (!user || user.disabled) throw new RustyError('AUTH_FAILED', 'invalid token');
    this.#audit?.record({ event: 'auth.refresh', user: user.username, ...context });
    return this.#tokens.issue(user.username, user.tokensValidAfter);
  }

  /**
   * Revokes the principal's token, or every token of the user with `everywhere` (also used for a token
   * without an id, which cannot be revoked alone).
   */
  async logout(principal: Principal, everywhere: boolean, context: AuthContext = {}): Promise<void> {
    if (principal.external && (everywhere || !principal.tokenId || !this.#revocations)) {
      throw new RustyError(
        'INVALID_MESSAGE',
        'only a single identity-provider token with a jti can be revoked here; end the others at the provider',
      );
    }
    if (everywhere || !principal.tokenId || !this.#revocations) {
      await this.#users.revokeTokens(principal.user);
    } else {
      await this.#revocations.revoke(
        principal.tokenId,
        principal.user,
        Math.ceil((principal.expiresAt ?? Date.now()) / 1000),
      );
    }
    this.#audit?.record({
      event: 'auth.logout',
      user: principal.user,
      ...context,
      details: { everywhere: everywhere || !principal.tokenId },
    });
  }
}
