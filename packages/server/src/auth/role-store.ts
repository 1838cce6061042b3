/** Roles and their grants, kept in internal tables. */
import type { InternalStore } from '../engine/engine.ts';
import { INTERNAL_PREFIX } from '../engine/statement-guard.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { readSettled, settleAfterWrite, type PositionedTable } from './log-positions.ts';
import {
  BUILTIN_ROLES,
  isGlobalPrivilege,
  isTablePrivilege,
  type Grant,
  type GrantablePrivilege,
} from './privileges.ts';

export const ROLES_TABLE = `${INTERNAL_PREFIX}roles`;
export const GRANTS_TABLE = `${INTERNAL_PREFIX}grants`;
/** Where each grant stands in the change log (see log-positions.ts). */
const GRANT_POSITIONS: PositionedTable = {
  table: GRANTS_TABLE,
  column: 'granted_at',
  keys: ['role', 'privilege', 'table_name'],
};

const ROLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const TABLE_NAME = /^(\*|[A-Za-z_][A-Za-z0-9_$]{0,127})$/;

export interface RoleRecord {
  name: string;
  description: string;
  builtin: boolean;
  grants: Grant[];
}

/** Checks a grant's shape and normalises it (upper-case privilege, lower-case table). */
export function normalizeGrant(raw: { privilege: string; table?: string | undefined }): Grant {
  const privilege = raw.privilege.toUpperCase();
  if (isGlobalPrivilege(privilege)) {
    if (raw.table !== undefined)
      throw new RustyError('INVALID_MESSAGE', `${privilege} is not granted on a table`);
    return { privilege };
  }
  if (!isTablePrivilege(privilege))
    throw new RustyError('INVALID_MESSAGE', `unknown privilege '${raw.privilege}'`);
  const table = (raw.table ?? '*').toLowerCase();
  if (!TABLE_NAME.test(table) || table.startsWith(INTERNAL_PREFIX)) {
    throw new RustyError('INVALID_MESSAGE', `invalid table name '${raw.table}'`);
  }
  return { privilege, table };
}

type RoleRow = { name: string; description: string; builtin: number };
type GrantRow = { role: string; privilege: string; table_name: string };

/** A role and its grants (a grant on no table has the table name ''). */
function recordOf(role: RoleRow, grants: readonly GrantRow[]): RoleRecord {
  return {
    name: role.name,
    description: role.description,
    builtin: role.builtin !== 0,
    grants: grants.map((g) => ({
      privilege: g.privilege as GrantablePrivilege,
      ...(g.table_name ? { table: g.table_name } : {}),
    })),
  };
}

export class RoleStore {
  readonly #store: InternalStore;

  constructor(store: InternalStore) {
    this.#store = store;
  }

  async migrate(): Promise<void> {
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${ROLES_TABLE} (
      name TEXT PRIMARY KEY,
      description TEXT NOT NULL DEFAULT '',
      builtin INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS ${GRANTS_TABLE} (
      role TEXT NOT NULL REFERENCES ${ROLES_TABLE}(name) ON DELETE CASCADE,
      privilege TEXT NOT NULL,
      table_name TEXT NOT NULL DEFAULT '',
      granted_at BIGINT NOT NULL DEFAULT 0,
      PRIMARY KEY (role, privilege, table_name)
    )`);
    // Databases from before grants recorded their position: their grants count from now on (a resume
    // from before the upgrade is answered with a reset once).
    const columns =
      this.#store.dialect === 'postgres'
        ? await this.#store.all<{ name: string }>(
            `SELECT column_name AS name FROM information_schema.columns WHERE table_name = '${GRANTS_TABLE}'`,
          )
        : await this.#store.all<{ name: string }>(`SELECT name FROM pragma_table_info('${GRANTS_TABLE}')`);
    if (!columns.some((c) => c.name === 'granted_at')) {
      await this.#store.exec(`ALTER TABLE ${GRANTS_TABLE} ADD COLUMN granted_at BIGINT NOT NULL DEFAULT 0`);
      await this.#store.run(`UPDATE ${GRANTS_TABLE} SET granted_at = ${this.#store.changeHead}`);
    }
    for (const [name, role] of Object.entries(BUILTIN_ROLES)) {
      await this.#store.run(
        `INSERT INTO ${ROLES_TABLE} (name, description, builtin) VALUES (?, ?, 1) ON CONFLICT DO NOTHING`,
        [name, role.description],
      );
      for (const grant of role.grants) {
        await this.#store.run(
          `INSERT INTO ${GRANTS_TABLE} (role, privilege, table_name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
          [name, grant.privilege, grant.table ?? ''],
        );
      }
    }
  }

  async list(): Promise<RoleRecord[]> {
    const roles = await this.#store.all<RoleRow>(
      `SELECT name, description, builtin FROM ${ROLES_TABLE} ORDER BY name`,
    );
    const grants = await this.#store.all<GrantRow>(
      `SELECT role, privilege, table_name FROM ${GRANTS_TABLE} ORDER BY role, privilege, table_name`,
    );
    return roles.map((r) =>
      recordOf(
        r,
        grants.filter((g) => g.role === r.name),
      ),
    );
  }

  /**
   * One role, read by its keys: every user's privileges are loaded through this, per role they hold,
   * again after every change of privileges on any node, so it reads that role's rows, not every role
   * and grant (as `list` does) to keep one.
   */
  async get(name: string): Promise<RoleRecord | undefined> {
    const role = await this.#store.get<RoleRow>(
      `SELECT name, description, builtin FROM ${ROLES_TABLE} WHERE name = ?`,
      [name],
    );
    if (!role) return undefined;
    const grants = await this.#store.all<GrantRow>(
      `SELECT role, privilege, table_name FROM ${GRANTS_TABLE} WHERE role = ? ORDER BY privilege, table_name`,
      [name],
    );
    return recordOf(role, grants);
  }

  async create(name: string, description: string, grants: Grant[]): Promise<void> {
    if (!ROLE_NAME.test(name)) throw new RustyError('INVALID_MESSAGE', `invalid role name '${name}'`);
    if (await this.get(name)) throw new RustyError('INVALID_MESSAGE', `role '${name}' already exists`);
    await this.#store.run(`INSERT INTO ${ROLES_TABLE} (name, description) VALUES (?, ?)`, [
      name,
      description,
    ]);
    for (const grant of grants) await this.grant(name, grant);
  }

  async remove(name: string): Promise<boolean> {
    const role = await this.get(name);
    if (role?.builtin) throw new RustyError('INVALID_MESSAGE', `built-in role '${name}' cannot be removed`);
    await this.#store.run(`DELETE FROM ${GRANTS_TABLE} WHERE role = ?`, [name]);
    return (await this.#store.run(`DELETE FROM ${ROLES_TABLE} WHERE name = ?`, [name])).changes > 0;
  }

  /**
   * Records the change-log position it is made at: a subscriber holding a privilege only through this
   * grant receives no change committed before it. Granting what the role already holds changes nothing
   * (the holding goes on unbroken).
   */
  async grant(role: string, grant: Grant): Promise<void> {
    await this.#store.run(
      `INSERT INTO ${GRANTS_TABLE} (role, privilege, table_name, granted_at) VALUES (?, ?, ?, ${this.#store.changeHead}) ON CONFLICT DO NOTHING`,
      [role, grant.privilege, grant.table ?? ''],
    );
    await settleAfterWrite(this.#store, GRANT_POSITIONS);
  }

  /**
   * The grants of `roles` with the change-log position each was made at.
   *
   * On PostgreSQL a list of several roles is also bounded by its least and greatest name (in the
   * database's own collation). The bound changes no answer, but until autovacuum first analyzes the
   * grants table each name of the list counts for 1/200 of it, and a table of a few hundred to a few
   * thousand grants was then read whole for two roles or more; with the bound it is read by its primary
   * key (up to five roles at every size tried; from eight, a table of under about 1,000 grants is still
   * read whole, which PostgreSQL then costs at about as many pages as eight descents of the index).
   */
  async grantsSince(roles: readonly string[]): Promise<(Grant & { role: string; since: number })[]> {
    if (roles.length === 0) return [];
    const names = roles.map(() => '?').join(', ');
    const bound =
      this.#store.dialect === 'postgres' && roles.length > 1
        ? ` AND role BETWEEN least(${names}) AND greatest(${names})`
        : '';
    const rows = await readSettled(this.#store, GRANT_POSITIONS, () =>
      this.#store.all<{ role: string; privilege: string; table_name: string; granted_at: number | string }>(
        `SELECT role, privilege, table_name, granted_at FROM ${GRANTS_TABLE} WHERE role IN (${names})${bound}`,
        bound ? [...roles, ...roles, ...roles] : [...roles],
      ),
    );
    return rows.map((g) => ({
      role: g.role,
      privilege: g.privilege as GrantablePrivilege,
      ...(g.table_name ? { table: g.table_name } : {}),
      since: Number(g.granted_at),
    }));
  }

  async revoke(role: string, grant: Grant): Promise<boolean> {
    const { changes } = await this.#store.run(
      `DELETE FROM ${GRANTS_TABLE} WHERE role = ? AND privilege = ? AND table_name = ?`,
      [role, grant.privilege, grant.table ?? ''],
    );
    return changes > 0;
  }
}
