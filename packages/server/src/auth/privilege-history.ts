/**
 * Since when a principal has held the right to read a table, as a position in the change log: the
 * latest moment from which it has held SELECT on it without a break. History from before that point is
 * not theirs to see — rows written and deleted before a user was granted a table, say — so a resume
 * from before it is answered with a reset, and a live subscription whose holding starts later than the
 * subscription itself (a revoke, even one undone at once) has lost the privilege meanwhile and ends.
 *
 * A holding is a role the principal has (since their membership was recorded) that carries a grant
 * giving SELECT on the table (since the grant was made): it began at the later of the two. Of all such
 * holdings the earliest counts.
 */
import type { Principal } from './authenticator.ts';
import type { RoleStore } from './role-store.ts';
import type { UserStore } from './user-store.ts';

/** The principal does not hold the privilege at all. */
export const NOT_HELD = Number.POSITIVE_INFINITY;

export class PrivilegeHistory {
  readonly #users: UserStore;
  readonly #roles: RoleStore;

  constructor(users: UserStore, roles: RoleStore) {
    this.#users = users;
    this.#roles = roles;
  }

  /** The change-log position since which `principal` has read `table` without a break; NOT_HELD if never. */
  async selectHeldSince(principal: Principal, table: string): Promise<number> {
    if (principal.anonymous) return 0;
    let roles: readonly string[];
    let memberships: Map<string, number>;
    if (principal.external) {
      // An identity provider's user has its roles in its token; when the provider gave them is not
      // known here, so only the grants' positions count (docs/security.md, known limits).
      roles = principal.roles;
      memberships = new Map(roles.map((role) => [role, 0]));
    } else {
      const user = await this.#users.find(principal.user);
      if (!user || user.disabled || user.id !== principal.userId) return NOT_HELD;
      roles = user.roles;
      memberships = await this.#users.membershipsOf(user.id);
    }
    const name = table.toLowerCase();
    let since = NOT_HELD;
    for (const grant of await this.#roles.grantsSince(roles)) {
      const reads =
        grant.privilege === 'ADMIN' ||
        (grant.privilege === 'SELECT' && (grant.table === '*' || grant.table === name));
      if (!reads) continue;
      since = Math.min(since, Math.max(grant.since, memberships.get(grant.role) ?? 0));
    }
    return since;
  }
}
