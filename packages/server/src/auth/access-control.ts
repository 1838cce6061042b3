/**
 * Decides whether a user may do what a statement needs. Privileges are looked up on the server for
 * every statement (from a cache rebuilt whenever users, roles or grants change), so a grant or a
 * revoke applies to open connections at once, not at the next login.
 */
import type {
  AccessNeed,
  Authorize,
  Caller,
  Engine,
  GlobalPrivilege,
  StatementAccess,
} from '../engine/engine.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { PrivilegeSet, type Grant } from './privileges.ts';
import type { RoleStore } from './role-store.ts';
import type { UserStore } from './user-store.ts';
import type { Principal } from './authenticator.ts';

const ADMIN_SET = new PrivilegeSet([{ privilege: 'ADMIN' }], ['admin']);

function makeCaller(principal: Principal, privileges: PrivilegeSet): Caller {
  const authorize: Authorize = (access) => AccessControl.check(privileges, access);
  return { user: principal.user, roles: privileges.roles, authorize };
}

/** Why a statement that reads the catalog itself is refused to a user without ADMIN. */
export const CATALOG_DENIED =
  'permission denied: reading the schema this way requires ADMIN (through a view or a trigger, or a schema PRAGMA function given a column); name sqlite_schema, or pragma_table_info() with a value, in the statement itself';

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

/** The refusal for a missing privilege, naming it. */
export function permissionDenied(need: AccessNeed): RustyError {
  return new RustyError(
    'PERMISSION_DENIED',
    describeNeed(need),
    need.table === undefined
      ? { privilege: need.privilege }
      : { privilege: need.privilege, table: need.table },
  );
}

/**
 * Throws PERMISSION_DENIED naming the first privilege in `access` the caller lacks, as the engine
 * enforces privileges (the server's grants on SQLite, the database's on PostgreSQL).
 */
export async function requireAccess(engine: Engine, caller: Caller, access: StatementAccess): Promise<void> {
  const held = await engine.holds(caller, access.needs);
  const missing = access.needs.find((_, i) => !held[i]);
  if (missing) throw permissionDenied(missing);
}

export class AccessControl {
  readonly #users: UserStore;
  readonly #roles: RoleStore;
  #cache = new Map<string, Promise<PrivilegeSet>>();
  /** The same privileges once loaded, for callers that must not wait (the inline fast path). */
  #resolved = new Map<string, PrivilegeSet>();
  /** The inline path's callers, by principal (see cachedCaller). */
  readonly #callers = new WeakMap<Principal, { privileges: PrivilegeSet; caller: Caller }>();
  /** Rises on every change; listeners re-check what they hold (subscriptions, sessions). */
  #version = 0;
  readonly #listeners = new Set<() => void>();
  readonly #deniedListeners = new Set<DeniedListener>();
  #sync: (() => Promise<void>) | undefined;
  #relay: (() => Promise<void>) | undefined;

  constructor(users: UserStore, roles: RoleStore) {
    this.#users = users;
    this.#roles = roles;
  }

  get version(): number {
    return this.#version;
  }

  /** Call after any change to users, roles or grants. */
  async changed(): Promise<void> {
    this.#forget();
    // The engine's own privileges follow first, so re-checks and the next statement see the change.
    await this.#sync?.();
    // Then the other nodes sharing the database re-check what they hold, as this one does.
    await this.#relay?.();
    this.#notify();
  }

  /** Another node changed users, roles or grants (and brought the engine's privileges in line). */
  changedElsewhere(): void {
    this.#forget();
    this.#notify();
  }

  #forget(): void {
    this.#version++;
    this.#cache.clear();
    this.#resolved.clear();
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Called on every change made through this node, once the engine's privileges follow it. */
  relayTo(relay: () => Promise<void>): void {
    this.#relay = relay;
  }

  /**
   * Called on every change before listeners are told: an engine that enforces privileges in the database
   * (PostgreSQL) brings them in line with the server's roles and grants there.
   */
  syncWith(sync: () => Promise<void>): void {
    this.#sync = sync;
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

  /**
   * The caller for a principal without waiting, when its privileges are already loaded. Made once per
   * principal and set of privileges: a change of privileges makes a new set, and with it a new caller.
   */
  cachedCaller(principal: Principal): Caller | undefined {
    const privileges = principal.anonymous ? ADMIN_SET : this.#resolved.get(cacheKey(principal));
    if (!privileges) return undefined;
    const made = this.#callers.get(principal);
    if (made?.privileges === privileges) return made.caller;
    const caller = makeCaller(principal, privileges);
    this.#callers.set(principal, { privileges, caller });
    return caller;
  }

  async #load(user: string): Promise<PrivilegeSet> {
    const record = await this.#users.find(user);
    if (!record || record.disabled) return new PrivilegeSet([], []);
    return this.#fromRoles(record.roles);
  }

  async #fromRoles(roleNames: readonly string[]): Promise<PrivilegeSet> {
    const grants: Grant[] = [];
    const held: string[] = [];
    for (const roleName of roleNames) {
      const role = await this.#roles.get(roleName);
      if (role) {
        grants.push(...role.grants);
        held.push(roleName);
      }
    }
    return new PrivilegeSet(grants, held);
  }

  /** Throws PERMISSION_DENIED naming the first missing privilege. */
  static check(privileges: PrivilegeSet, access: StatementAccess): void {
    if (privileges.admin) return;
    // Users without ADMIN read the catalog through what they may see (catalog-rewrite.ts); a statement
    // still reading it itself would show them every table.
    if (access.catalog) throw new RustyError('PERMISSION_DENIED', CATALOG_DENIED, { privilege: 'ADMIN' });
    for (const need of access.needs) {
      const ok =
        need.table === undefined
          ? privileges.hasGlobal(need.privilege)
          : privileges.hasOnTable(need.privilege, need.table);
      if (!ok) throw permissionDenied(need);
    }
  }

  /** The caller a principal's statements run as, bound to its current privileges. */
  async callerFor(principal: Principal): Promise<Caller> {
    return makeCaller(principal, await this.privilegesOf(principal));
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
