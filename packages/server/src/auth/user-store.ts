/** Users, kept in an internal table of the database itself. */
import { randomUUID } from 'node:crypto';
import type { InternalStore } from '../engine/engine.ts';
import { INTERNAL_PREFIX } from '../engine/statement-guard.ts';
import { readSettled, settleAfterWrite, type PositionedTable } from './log-positions.ts';
import { hashPassword } from './passwords.ts';
import { revokedExpression } from './token-revocations.ts';

export const USERS_TABLE = `${INTERNAL_PREFIX}users`;
/** Since when (a change-log position) each user has held each of their roles. */
export const MEMBERS_TABLE = `${INTERNAL_PREFIX}role_members`;
/** Where each membership stands in the change log (see log-positions.ts). */
const MEMBER_POSITIONS: PositionedTable = {
  table: MEMBERS_TABLE,
  column: 'since',
  keys: ['user_id', 'role'],
};

export interface UserRecord {
  username: string;
  /**
   * Random, given when the user is created and never reused: a user deleted and created again under
   * the same name is another user, and tokens of the first never open the second's account.
   */
  id: string;
  passwordHash: string;
  roles: string[];
  disabled: boolean;
  /**
   * Tokens carry the generation they were issued at and are accepted only while it is current. A
   * password change, disabling and "log out everywhere" move it on, which ends every token issued so
   * far at once — not at the next second of a clock.
   */
  tokenGeneration: number;
}

interface UserRow {
  username: string;
  user_id: string;
  password_hash: string;
  roles: string;
  disabled: number;
  token_generation: number;
}

const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

export function isValidUsername(name: string): boolean {
  return USERNAME_PATTERN.test(name);
}

/** The current time as ISO 8601 text, in each engine's SQL. */
const NOW_ISO = {
  sqlite: "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
  postgres: `(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`,
};

const USER_COLUMNS = 'username, user_id, password_hash, roles, disabled, token_generation';
const TOKEN_USER_COLUMNS = 'user_id, roles, disabled, token_generation';
const FIND_USER_SQL = `SELECT ${USER_COLUMNS} FROM ${USERS_TABLE} WHERE username = ?`;
/**
 * A token's user and whether its login or the token itself was revoked (its parameters: the token's
 * login id, its token id, then the username), in one statement: every connect asks both, and two
 * statements cost two SQLite steps (two round trips on PostgreSQL), which were most of a connect's
 * token check. Without a user row there is no row, and the token fails on that alone.
 */
export const FIND_FOR_TOKEN_SQL = `SELECT ${TOKEN_USER_COLUMNS}, ${revokedExpression(2)} AS revoked FROM ${USERS_TABLE} WHERE username = ?`;

/**
 * What a token's check reads of its user: the row but its password hash, which the check never uses
 * (its text, and the name the lookup was made by, were two of the columns every connect converted).
 */
export type TokenUser = Omit<UserRecord, 'passwordHash'>;

/** A user's token columns read with its token's revocation (SQLite gives the EXISTS as 0 or 1, PostgreSQL as a boolean). */
type UserRowForToken = Omit<UserRow, 'username' | 'password_hash'> & { revoked: number | boolean };

/** A token's user (undefined when there is none) and whether the token or its login was revoked. */
export interface TokenHolder {
  user: TokenUser | undefined;
  revoked: boolean;
}

/** The holder of a token of `username`, from the row found by that name (`username = ?`: the same text). */
function holderOf(username: string, row: UserRowForToken | undefined): TokenHolder {
  if (!row) return { user: undefined, revoked: false };
  return {
    user: {
      username,
      id: row.user_id,
      roles: JSON.parse(row.roles) as string[],
      disabled: row.disabled !== 0,
      tokenGeneration: row.token_generation,
    },
    revoked: Boolean(row.revoked),
  };
}

function recordOf(row: UserRow | undefined): UserRecord | undefined {
  if (!row) return undefined;
  return {
    username: row.username,
    id: row.user_id,
    passwordHash: row.password_hash,
    roles: JSON.parse(row.roles) as string[],
    disabled: row.disabled !== 0,
    tokenGeneration: row.token_generation,
  };
}

export class UserStore {
  readonly #store: InternalStore;

  constructor(store: InternalStore) {
    this.#store = store;
  }

  async migrate(): Promise<void> {
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${USERS_TABLE} (
      username TEXT PRIMARY KEY,
      user_id TEXT NOT NULL UNIQUE,
      password_hash TEXT NOT NULL,
      roles TEXT NOT NULL DEFAULT '[]',
      disabled INTEGER NOT NULL DEFAULT 0,
      token_generation INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL DEFAULT ${NOW_ISO[this.#store.dialect]}
    )`);
    // PostgreSQL databases start with the current columns; SQLite files may be older.
    if (this.#store.dialect === 'postgres') {
      await this.#migrateMembers();
      return;
    }
    // Databases from before tokens were bound to a user id: every user gets one (their old tokens,
    // which carry none, are refused: users log in again once).
    const columns = new Set(
      (await this.#store.all<{ name: string }>(`SELECT name FROM pragma_table_info('${USERS_TABLE}')`)).map(
        (c) => c.name,
      ),
    );
    if (!columns.has('user_id')) {
      await this.#store.exec(`ALTER TABLE ${USERS_TABLE} ADD COLUMN user_id TEXT`);
      for (const { username } of await this.#store.all<{ username: string }>(
        `SELECT username FROM ${USERS_TABLE}`,
      )) {
        await this.#store.run(`UPDATE ${USERS_TABLE} SET user_id = ? WHERE username = ?`, [
          randomUUID(),
          username,
        ]);
      }
    }
    if (!columns.has('token_generation')) {
      await this.#store.exec(
        `ALTER TABLE ${USERS_TABLE} ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0`,
      );
    }
    if (columns.has('tokens_valid_after')) {
      await this.#store.exec(`ALTER TABLE ${USERS_TABLE} DROP COLUMN tokens_valid_after`);
    }
    await this.#migrateMembers();
  }

  async #migrateMembers(): Promise<void> {
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${MEMBERS_TABLE} (
      user_id TEXT NOT NULL,
      role TEXT NOT NULL,
      since BIGINT NOT NULL,
      PRIMARY KEY (user_id, role)
    )`);
    // Roles held before memberships were recorded count from now on. (`WHERE true`: SQLite needs a
    // WHERE before ON CONFLICT in an INSERT … SELECT.)
    const pairs =
      this.#store.dialect === 'postgres'
        ? `SELECT u.user_id, r.value FROM ${USERS_TABLE} AS u, jsonb_array_elements_text(u.roles::jsonb) AS r(value) WHERE u.user_id IS NOT NULL`
        : `SELECT u.user_id, r.value FROM ${USERS_TABLE} AS u, json_each(u.roles) AS r WHERE u.user_id IS NOT NULL`;
    await this.#store.run(
      `INSERT INTO ${MEMBERS_TABLE} (user_id, role, since) SELECT p.*, ${this.#store.changeHead} FROM (${pairs}) AS p WHERE true ON CONFLICT DO NOTHING`,
    );
  }

  /** Records that the user holds `roles` from now on (those already held keep their position). */
  async #join(userId: string, roles: readonly string[]): Promise<void> {
    for (const role of roles) {
      await this.#store.run(
        `INSERT INTO ${MEMBERS_TABLE} (user_id, role, since) VALUES (?, ?, ${this.#store.changeHead}) ON CONFLICT DO NOTHING`,
        [userId, role],
      );
    }
    if (roles.length > 0) await settleAfterWrite(this.#store, MEMBER_POSITIONS);
  }

  /**
   * Since when (a change-log position) the user has held each role, without a break. A role taken away
   * and given back counts from when it was given back.
   */
  async membershipsOf(userId: string): Promise<Map<string, number>> {
    const rows = await readSettled(this.#store, MEMBER_POSITIONS, () =>
      this.#store.all<{ role: string; since: number | string }>(
        `SELECT role, since FROM ${MEMBERS_TABLE} WHERE user_id = ?`,
        [userId],
      ),
    );
    return new Map(rows.map((r) => [r.role, Number(r.since)]));
  }

  async find(username: string): Promise<UserRecord | undefined> {
    return recordOf(await this.#store.get<UserRow>(FIND_USER_SQL, [username]));
  }

  /**
   * `find`, answered in this tick when the store reads synchronously (SQLite): `{ user }`, the user
   * undefined when there is none; undefined when the store cannot.
   */
  findNow(username: string): { user: UserRecord | undefined } | undefined {
    if (!this.#store.getNow) return undefined;
    return { user: recordOf(this.#store.getNow<UserRow>(FIND_USER_SQL, [username])) };
  }

  /**
   * The user a token of this server names and whether the token (`tokenId`) or its login (`loginId`)
   * is in TokenRevocations' table, read together (see FIND_FOR_TOKEN_SQL): the same rows `find` and
   * `TokenRevocations.isRevoked(loginId, tokenId)` read, in one snapshot.
   */
  async findForToken(username: string, loginId: string, tokenId: string): Promise<TokenHolder> {
    return holderOf(
      username,
      await this.#store.get<UserRowForToken>(FIND_FOR_TOKEN_SQL, [loginId, tokenId, username]),
    );
  }

  /** `findForToken`, answered in this tick when the store reads synchronously (SQLite); else undefined. */
  findForTokenNow(username: string, loginId: string, tokenId: string): TokenHolder | undefined {
    if (!this.#store.getNow) return undefined;
    return holderOf(
      username,
      this.#store.getNow<UserRowForToken>(FIND_FOR_TOKEN_SQL, [loginId, tokenId, username]),
    );
  }

  async count(): Promise<number> {
    const row = await this.#store.get<{ n: number }>(`SELECT count(*) AS n FROM ${USERS_TABLE}`);
    return row?.n ?? 0;
  }

  async create(username: string, password: string, roles: string[]): Promise<void> {
    if (!isValidUsername(username)) throw new Error(`invalid username '${username}'`);
    // A new id: tokens issued to an earlier user of the same name (deleted since) name another id.
    const id = randomUUID();
    await this.#store.run(
      `INSERT INTO ${USERS_TABLE} (username, user_id, password_hash, roles) VALUES (?, ?, ?, ?)`,
      [username, id, await hashPassword(password), JSON.stringify(roles)],
    );
    await this.#join(id, roles);
  }

  async list(): Promise<Omit<UserRecord, 'id' | 'passwordHash' | 'tokenGeneration'>[]> {
    const rows = await this.#store.all<UserRow>(
      `SELECT username, roles, disabled FROM ${USERS_TABLE} ORDER BY username`,
    );
    return rows.map((row) => ({
      username: row.username,
      roles: JSON.parse(row.roles) as string[],
      disabled: row.disabled !== 0,
    }));
  }

  async setRoles(username: string, roles: string[]): Promise<boolean> {
    const user = await this.find(username);
    if (!user) return false;
    await this.#store.run(`UPDATE ${USERS_TABLE} SET roles = ? WHERE username = ?`, [
      JSON.stringify(roles),
      username,
    ]);
    for (const role of user.roles.filter((r) => !roles.includes(r))) {
      await this.#store.run(`DELETE FROM ${MEMBERS_TABLE} WHERE user_id = ? AND role = ?`, [user.id, role]);
    }
    await this.#join(user.id, roles);
    return true;
  }

  /** Disabling also ends every token issued so far: enabling the user again does not revive them. */
  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    if (disabled) {
      const { changes } = await this.#store.run(
        `UPDATE ${USERS_TABLE} SET disabled = 1, token_generation = token_generation + 1 WHERE username = ?`,
        [username],
      );
      return changes > 0;
    }
    const { changes } = await this.#store.run(`UPDATE ${USERS_TABLE} SET disabled = 0 WHERE username = ?`, [
      username,
    ]);
    return changes > 0;
  }

  /** Ends every token issued to the user so far; tokens issued from now on work. */
  async revokeTokens(username: string): Promise<boolean> {
    const { changes } = await this.#store.run(
      `UPDATE ${USERS_TABLE} SET token_generation = token_generation + 1 WHERE username = ?`,
      [username],
    );
    return changes > 0;
  }

  async remove(username: string): Promise<boolean> {
    const user = await this.find(username);
    if (!user) return false;
    await this.#store.run(`DELETE FROM ${MEMBERS_TABLE} WHERE user_id = ?`, [user.id]);
    return (await this.#store.run(`DELETE FROM ${USERS_TABLE} WHERE username = ?`, [username])).changes > 0;
  }

  /** Changing the password ends every token issued before the change. */
  async setPassword(username: string, password: string): Promise<boolean> {
    const { changes } = await this.#store.run(
      `UPDATE ${USERS_TABLE} SET password_hash = ?, token_generation = token_generation + 1 WHERE username = ?`,
      [await hashPassword(password), username],
    );
    return changes > 0;
  }
}
