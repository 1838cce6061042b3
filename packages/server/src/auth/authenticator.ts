/**
 * Logging in and checking tokens. Wrong credentials cost the same time whether or not the user exists:
 * an unknown user is checked against a decoy hash. A token is accepted only while its user exists, is
 * enabled, has not changed password since it was issued, and the token itself was not logged out.
 */
import { RustyError } from '../errors/rusty-error.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { decoyPasswordHash, verifyPassword } from './passwords.ts';
import { CLOCK_TOLERANCE_S, type TokenClaims, type TokenService } from './tokens.ts';
import type { TokenUser, UserStore } from './user-store.ts';
import type { TokenRevocations } from './token-revocations.ts';
import { ExternalIdentityProvider } from './external-idp.ts';

export interface Principal {
  user: string;
  /** The user's id (see UserRecord); absent for the anonymous caller and identity-provider users. */
  userId?: string;
  roles: string[];
  /** Milliseconds since the epoch; undefined when authentication is off. */
  expiresAt?: number;
  /** The token's id (`jti`), when it has one. */
  tokenId?: string;
  /** The login the token belongs to (`sid`): shared by a login's first token and its refreshes. */
  loginId?: string;
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

/**
 * Whether two principals are the same identity: the same user (the same account, not only the same
 * name), from the same source. A connection keeps one identity for its whole life.
 */
export function sameIdentity(a: Principal, b: Principal): boolean {
  return (
    a.user === b.user && a.userId === b.userId && !a.external === !b.external && !a.anonymous === !b.anonymous
  );
}

/**
 * What `authenticateNow` would answer, kept to be acted on later in the same tick: the principal
 * (undefined when it cannot answer now), or what it would throw. See `Authenticator.checkNow`.
 */
export type CheckedNow = { principal: Principal | undefined } | { error: unknown };

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

/**
 * The principal a verified token of this server names, given its user's row and whether its login or
 * the token itself was revoked; throws when the token no longer holds.
 */
function checkedUser(claims: TokenClaims, user: TokenUser | undefined, revoked: boolean): TokenUser {
  // Another account of the same name (the one it was issued to was deleted) is another user.
  if (!user || user.disabled || user.id !== claims.userId) {
    throw new RustyError('AUTH_FAILED', 'invalid token');
  }
  if (claims.generation !== user.tokenGeneration || revoked) {
    throw new RustyError('AUTH_FAILED', 'token has been revoked; log in again');
  }
  return user;
}

/** Principals kept for reuse (see Authenticator.#principalOf): the last ones made, by token id. */
const PRINCIPALS_KEPT = 256;

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Authenticator {
  readonly #users: UserStore;
  readonly #tokens: TokenService;
  readonly #revocations: TokenRevocations | undefined;
  readonly #audit: AuditLog | undefined;
  readonly #idp: ExternalIdentityProvider | undefined;
  /** See #principalOf. */
  readonly #principals = new Map<string, Principal>();

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
    return this.#tokens.issue(user);
  }

  /** Resolves a bearer token to the user it names, who must still exist and be enabled. */
  async authenticate(token: string, context: AuthContext = {}): Promise<Principal> {
    try {
      return await this.#check(token);
    } catch (err) {
      this.#failed(err, context);
      throw err;
    }
  }

  /**
   * `authenticate`, answered in this tick when it can be: a token of this server, with the user and the
   * revocations read synchronously (SQLite). The same checks, from the same rows, as `authenticate`;
   * undefined when it cannot answer now (an identity provider's token, a store that must be waited for).
   * A connect with its token in the URL is then answered in the tick of its upgrade.
   */
  authenticateNow(token: string, context: AuthContext = {}): Principal | undefined {
    return this.outcomeOf(this.checkNow(token), context);
  }

  /**
   * `authenticateNow`'s answer kept instead of thrown, and not audited yet: for the gateway, which
   * checks the URL tokens of the upgrades that arrive together back to back, before it admits them,
   * and hands each connection its own outcome to act on in the same tick (see
   * WebSocketGateway.#flush). The connection that acts on it takes it through `outcomeOf`.
   */
  checkNow(token: string): CheckedNow {
    try {
      return { principal: this.#checkNow(token) };
    } catch (error) {
      return { error };
    }
  }

  /**
   * The principal of a `checkNow` (undefined: it could not answer now), or its error thrown and
   * audited for `context`, as `authenticateNow` would have.
   */
  outcomeOf(checked: CheckedNow, context: AuthContext = {}): Principal | undefined {
    if ('error' in checked) {
      this.#failed(checked.error, context);
      throw checked.error;
    }
    return checked.principal;
  }

  #checkNow(token: string): Principal | undefined {
    if (this.#idp && ExternalIdentityProvider.claims(token)) return undefined;
    const claims = this.#tokens.verifyNow(token);
    // The user's row and the revocations of the token and its login, in one SQLite step.
    const found = this.#revocations
      ? this.#users.findForTokenNow(claims.user, claims.loginId, claims.tokenId)
      : this.#users.findNow(claims.user);
    if (!found) return undefined;
    const revoked = 'revoked' in found && found.revoked === true;
    return this.#principalOf(claims, checkedUser(claims, found.user, revoked));
  }

  #failed(err: unknown, context: AuthContext): void {
    if (err instanceof RustyError) {
      this.#audit?.record({
        event: 'auth.failure',
        ...context,
        details: { code: err.code, reason: err.message },
      });
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
    // The user's row and the revocations of the token and its login, in one statement.
    const { user, revoked } = this.#revocations
      ? await this.#users.findForToken(claims.user, claims.loginId, claims.tokenId)
      : { user: await this.#users.find(claims.user), revoked: false };
    return this.#principalOf(claims, checkedUser(claims, user, revoked));
  }

  /**
   * The principal of a token that passed every check (this time: the user's row and the revocations
   * are read at every authentication). Every connection opened with one token gets the same frozen
   * object while the user's row still says the same: a principal of its own, with its own copies of
   * the user's id and roles read from the row, cost each authenticated connection ~200 bytes.
   */
  #principalOf(claims: TokenClaims, user: TokenUser): Principal {
    const expiresAt = claims.expiresAt * 1000;
    const kept = this.#principals.get(claims.tokenId);
    if (
      kept !== undefined &&
      kept.user === user.username &&
      kept.userId === user.id &&
      kept.expiresAt === expiresAt &&
      kept.loginId === claims.loginId &&
      sameRoles(kept.roles, user.roles)
    ) {
      return kept;
    }
    const principal: Principal = Object.freeze({
      user: user.username,
      userId: user.id,
      roles: Object.freeze([...user.roles]) as string[],
      expiresAt,
      tokenId: claims.tokenId,
      loginId: claims.loginId,
    });
    if (kept === undefined && this.#principals.size >= PRINCIPALS_KEPT) {
      this.#principals.delete(this.#principals.keys().next().value!);
    }
    this.#principals.set(claims.tokenId, principal);
    return principal;
  }

  /**
   * A new token for the holder of a valid one, continuing the same login: the old token stays valid
   * until it expires, and logging out either ends both.
   */
  async refresh(principal: Principal, context: AuthContext = {}): Promise<IssuedToken> {
    if (principal.external) {
      throw new RustyError('INVALID_MESSAGE', 'tokens of the identity provider are refreshed there');
    }
    const user = await this.#users.find(principal.user);
    if (!user || user.disabled || user.id !== principal.userId) {
      throw new RustyError('AUTH_FAILED', 'invalid token');
    }
    this.#audit?.record({ event: 'auth.refresh', user: user.username, ...context });
    return this.#tokens.issue(user, principal.loginId);
  }

  /**
   * Revokes the principal's login (its token and every token refreshed from it or it was refreshed
   * from), or every token of the user with `everywhere` (also used for a token without an id, which
   * cannot be revoked alone).
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
    } else if (principal.loginId) {
      // A token refreshed from this login just now expires a full lifetime from now: the revocation
      // is kept until then.
      const lastExpiry = Math.floor(Date.now() / 1000) + this.#tokens.ttlSeconds + CLOCK_TOLERANCE_S;
      await this.#revocations.revoke(principal.loginId, principal.user, lastExpiry);
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
