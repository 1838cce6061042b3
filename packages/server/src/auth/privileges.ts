/** The privilege vocabulary and the built-in roles. */
import type { GlobalPrivilege, TablePrivilege } from '../engine/engine.ts';

export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
export const GLOBAL_PRIVILEGES = ['CREATE', 'DROP', 'ALTER', 'MONITOR', 'ADMIN'] as const;
export type GrantablePrivilege = (typeof TABLE_PRIVILEGES)[number] | GlobalPrivilege;

/** A grant: a table privilege on one table or on every table (`*`), or a global privilege. */
export interface Grant {
  privilege: GrantablePrivilege;
  /** `*` for every table; omitted for global privileges. */
  table?: string;
}

export function isTablePrivilege(p: string): p is Exclude<TablePrivilege, 'WRITE'> {
  return (TABLE_PRIVILEGES as readonly string[]).includes(p);
}

export function isGlobalPrivilege(p: string): p is GlobalPrivilege {
  return (GLOBAL_PRIVILEGES as readonly string[]).includes(p);
}

const ALL_TABLES = '*';

export const BUILTIN_ROLES: Record<string, { description: string; grants: Grant[] }> = {
  admin: { description: 'everything, including users, roles and sessions', grants: [{ privilege: 'ADMIN' }] },
  readwrite: {
    description: 'read and change the rows of every table, create, alter and drop tables',
    grants: [
      ...TABLE_PRIVILEGES.map((privilege) => ({ privilege, table: ALL_TABLES })),
      { privilege: 'CREATE' },
      { privilege: 'ALTER' },
      { privilege: 'DROP' },
    ],
  },
  readonly: { description: 'read every table', grants: [{ privilege: 'SELECT', table: ALL_TABLES }] },
  monitor: { description: 'read server metrics', grants: [{ privilege: 'MONITOR' }] },
};

/** The privileges one user holds, compiled for quick checks. */
export class PrivilegeSet {
  readonly admin: boolean;
  /** The existing roles the grants came from, sorted: who the user is to an engine that uses roles. */
  readonly roles: readonly string[];
  /** The grants this set was made from, each once. */
  readonly grants: readonly Grant[];
  readonly #global = new Set<string>();
  /** privilege → tables (`*` for all) */
  readonly #tables = new Map<string, Set<string>>();

  constructor(grants: readonly Grant[], roles: readonly string[]) {
    this.roles = [...new Set(roles)].sort();
    const seen = new Set<string>();
    this.grants = grants.filter((grant) => {
      const key = `${grant.privilege}\u0000${grant.table ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    for (const grant of grants) {
      if (isGlobalPrivilege(grant.privilege)) this.#global.add(grant.privilege);
      else {
        let tables = this.#tables.get(grant.privilege);
        if (!tables) this.#tables.set(grant.privilege, (tables = new Set()));
        tables.add(grant.table ?? ALL_TABLES);
      }
    }
    this.admin = this.#global.has('ADMIN');
  }

  hasGlobal(privilege: GlobalPrivilege): boolean {
    return this.admin || this.#global.has(privilege);
  }

  hasOnTable(privilege: TablePrivilege, table: string): boolean {
    if (this.admin) return true;
    if (privilege === 'WRITE') {
      return TABLE_PRIVILEGES.some((p) => p !== 'SELECT' && this.hasOnTable(p, table));
    }
    const tables = this.#tables.get(privilege);
    return tables !== undefined && (tables.has(ALL_TABLES) || tables.has(table.toLowerCase()));
  }
}
