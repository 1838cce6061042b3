/**
 * Decides whether a user may do what a statement needs. Privileges are looked up on the server for
 * every statement (from a cache rebuilt whenever users, roles or grants change), so a grant or a
 * revoke applies to open connections at once, not at the next login.
 */
import type { AccessNeed, Authorize, GlobalPrivilege, StatementAccess } from '../engine/engine.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { PrivilegeSet, type Grant } from './privileges.ts';
import type { RoleStore } from './role-store.ts';
import type { UserStore } from './user-store.ts';
import type { Principal } from './authenticator.ts';

const ADMIN_SET = new PrivilegeSet([{ privilege: 'ADMIN' }]);

/** Who each authorize callback was made for: lets the audit log name the user a refusal was for. */
const authorizerOwners = new WeakMap<Authorize, Principal>();

export function principalOfAuthorizer(authorize: Authorize): Principal | undefined {
  return authorizerOwners.get(authorize);
}

/** Called when a principal is refused a global privilege (an admin endpoint, metrics). */
export type DeniedListener = (principal: Principal, privilege: GlobalPrivilege) => void;

/** Local users by name; identity-provider users by their set of roles (they have nothing else here). */
function cacheKey(principal: Principal): string {
  return principal.external ? `\u0000external\u0000${principal.roles.join('\u0000')}` : principal.user;
}

function describeNeed(need: AccessNeed): string {
  if (need.table === undefined) return `permission denied: ${need.privilege} privilege required`;
  const privilege = need.privilege === 'WRITE' ? 'INSERT, UPDATE or DELETE' : need.privilege;
  return `permission denied: ${privilege} on table ${need.table}`;
}

export class AccessControl {
  readonly #users: UserStore;
  readonly #roles: RoleStore;
  #cache = new Map<string, Promise<PrivilegeSet>>();
  /** The same privileges once loaded, for callers that must not wait (the inline fast path). */
  #resolved = new Map<string, PrivilegeSet>();
  /** Rises on every change; listeners re-check what they hold (subscriptions, sessions). */
  #version = 0;
  readonly #listeners = new Set<() => void>();
  readonly #deniedListeners = new Set<DeniedListener>();

  constructor(users: UserStore, roles: RoleStore) {
    this.#users = users;
    this.#roles = roles;
  }

  get version(): number {
    return this.#version;
  }

  /** Call after any change to users, roles or grants. */
  changed(): void {
    this.#version++;
    this.#cache.clear();
    this.#resolved.clear();
    for (const listener of this.#listeners) listener();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onDenied(listener: DeniedListener): () => void {
    this.#deniedListeners.add(listener);
    return () => this.#deniedListeners.delete(listener);
  }

  /** The privileges of a principal; the anonymous principal (authentication off) holds ADMIN. */
  async privilegesOf(principal: Principal): Promise<PrivilegeSet> {
    if (principal.anonymous) return ADMIN_SET;
    const key = cacheKey(principal);
    let set = this.#cache.get(key);
    if (!set) {
      const version = this.#version;
      // An identity provider's user exists only in its token: its roles are the token's.
      const loading = principal.external ? this.#fromRoles(principal.roles) : this.#load(principal.user);
      set = loading.then((loaded) => {
        // A change while loading made this answer stale: keep it out of the synchronous cache.
        if (version === this.#version) this.#resolved.set(key, loaded);
        return loaded;
      });
      this.#cache.set(key, set);
    }
    return set;
  }

  /** An authorize callback without waiting, when the principal's privileges are already loaded. */
  cachedAuthorizer(principal: Principal): Authorize | undefined {
    const privileges = principal.anonymous ? ADMIN_SET : this.#resolved.get(cacheKey(principal));
    if (!privileges) return undefined;
    const authorize: Authorize = (access) => AccessControl.check(privileges, access);
    authorizerOwners.set(authorize, principal);
    return authorize;
  }

  async #load(user: string): Promise<PrivilegeSet> {
    const record = await this.#users.find(user);
    if (!record || record.disabled) return new PrivilegeSet([]);
    return this.#fromRoles(record.roles);
  }

  async #fromRoles(roleNames: readonly string[]): Promise<PrivilegeSet> {
    const grants: Grant[] = [];
    for (const roleName of roleNames) {
      const role = await this.#roles.get(roleName);
      if (role) grants.push(...role.grants);
    }
    return new PrivilegeSet(grants);
  }

  /** Throws PERMISSION_DENIED naming the first missing privilege. */
  static check(privileges: PrivilegeSet, access: StatementAccess): void {
    if (privileges.admin) return;
    for (const need of access.needs) {
      const ok =
        need.table === undefined
          ? privileges.hasGlobal(need.privilege)
          : privileges.hasOnTable(need.privilege, need.table);
      if (!ok) {
        throw new RustyError(
          'PERMISSION_DENIED',
          describeNeed(need),
          need.table === undefined
            ? { privilege: need.privilege }
            : { privilege: need.privilege, table: need.table },
        );
      }
    }
  }

  /** An engine authorize callback bound to a principal's current privileges. */
  async authorizerFor(principal: Principal): Promise<Authorize> {
    const privileges = await this.privilegesOf(principal);
    const authorize: Authorize = (access) => AccessControl.check(privileges, access);
    authorizerOwners.set(authorize, principal);
    return authorize;
  }

  async requireGlobal(principal: Principal, privilege: GlobalPrivilege): Promise<void> {
    if (!(await this.privilegesOf(principal)).hasGlobal(privilege)) {
      for (const listener of this.#deniedListeners) listener(principal, privilege);
      throw new RustyError('PERMISSION_DENIED', `permission denied: ${privilege} privilege required`, {
        privilege,
      });
    }
  }
}
