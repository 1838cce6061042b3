/**
 * Logging in and checking tokens. Wrong credentials cost the same time whether or not the user exists:
 * an unknown user is checked against a decoy hash.
 */
import { RustyError } from '../errors/rusty-error.ts';
import { decoyPasswordHash, verifyPassword } from './passwords.ts';
import type { TokenService } from './tokens.ts';
import type { UserStore } from './user-store.ts';

export interface Principal {
  user: string;
  roles: string[];
  /** Milliseconds since the epoch; undefined when authentication is off. */
  expiresAt?: number;
  /** True only when authentication is off: such a caller holds every privilege. */
  anonymous?: boolean;
}

export const ANONYMOUS: Principal = Object.freeze({ user: 'anonymous', roles: ['admin'], anonymous: true });

export class Authenticator {
  readonly #users: UserStore;
  readonly #tokens: TokenService;

  constructor(users: UserStore, tokens: TokenService) {
    this.#users = users;
    this.#tokens = tokens;
  }

  async login(username: string, password: string): Promise<{ token: string; expiresAt: Date }> {
    const user = await this.#users.find(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyPasswordHash()));
    if (!user || !ok || user.disabled) throw new RustyError('AUTH_FAILED', 'invalid username or password');
    return this.#tokens.issue(user.username);
  }

  /** Resolves a bearer token to the user it names, who must still exist and be enabled. */
  async authenticate(token: string): Promise<Principal> {
    const claims = await this.#tokens.verify(token);
    const user = await this.#users.find(claims.user);
    if (!user || user.disabled) throw new RustyError('AUTH_FAILED', 'invalid token');
    return { user: user.username, roles: user.roles, expiresAt: claims.expiresAt * 1000 };
  }
}
