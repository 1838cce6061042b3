/** Users, kept in an internal table of the database itself. */
import type { InternalStore } from '../engine/engine.ts';
import { INTERNAL_PREFIX } from '../engine/statement-guard.ts';
import { hashPassword } from './passwords.ts';

export const USERS_TABLE = `${INTERNAL_PREFIX}users`;

export interface UserRecord {
  username: string;
  passwordHash: string;
  roles: string[];
  disabled: boolean;
  /**
   * Seconds since the epoch: tokens issued (`iat`) before this are no longer accepted. Set when the
   * user is created, changes password or is disabled, so that older tokens die with the old state.
   */
  tokensValidAfter: number;
}

interface UserRow {
  username: string;
  password_hash: string;
  roles: string;
  disabled: number;
  tokens_valid_after: number;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

export function isValidUsername(name: string): boolean {
  return USERNAME_PATTERN.test(name);
}

export class UserStore {
  readonly #store: InternalStore;

  constructor(store: InternalStore) {
    this.#store = store;
  }

  async migrate(): Promise<void> {
    if (this.#store.dialect === 'postgres') {
      await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${USERS_TABLE} (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        roles TEXT NOT NULL DEFAULT '[]',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        tokens_valid_after BIGINT NOT NULL DEFAULT 0
      )`);
      return;
    }
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${USERS_TABLE} (
      username TEXT PRIMARY KEY,
      password_hash TEXT NOT NULL,
      roles TEXT NOT NULL DEFAULT '[]',
      disabled INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`);
    const columns = await this.#store.all<{ name: string }>(
      `SELECT name FROM pragma_table_info('${USERS_TABLE}')`,
    );
    if (!columns.some((c) => c.name === 'tokens_valid_after')) {
      await this.#store.exec(
        `ALTER TABLE ${USERS_TABLE} ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0`,
      );
    }
  }

  async find(username: string): Promise<UserRecord | undefined> {
    const row = await this.#store.get<UserRow>(
      `SELECT username, password_hash, roles, disabled, tokens_valid_after FROM ${USERS_TABLE} WHERE username = ?`,
      [username],
    );
    if (!row) return undefined;
    return {
      username: row.username,
      passwordHash: row.password_hash,
      roles: JSON.parse(row.roles) as string[],
      disabled: row.disabled !== 0,
      tokensValidAfter: row.tokens_valid_after,
    };
  }

  async count(): Promise<number> {
    const row = await this.#store.get<{ n: number }>(`SELECT count(*) AS n FROM ${USERS_TABLE}`);
    return row?.n ?? 0;
  }

  async create(username: string, password: string, roles: string[]): Promise<void> {
    if (!isValidUsername(username)) throw new Error(`invalid username '${username}'`);
    // Tokens issued to an earlier user of the same name (deleted since) must not work for this one.
    await this.#store.run(
      `INSERT INTO ${USERS_TABLE} (username, password_hash, roles, tokens_valid_after) VALUES (?, ?, ?, ?)`,
      [username, await hashPassword(password), JSON.stringify(roles), nowSeconds()],
    );
  }

  async list(): Promise<Omit<UserRecord, 'passwordHash' | 'tokensValidAfter'>[]> {
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
    const { changes } = await this.#store.run(`UPDATE ${USERS_TABLE} SET roles = ? WHERE username = ?`, [
      JSON.stringify(roles),
      username,
    ]);
    return changes > 0;
  }

  /** Disabling also ends every token issued so far: enabling the user again does not revive them. */
  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    if (disabled) {
      const { changes } = await this.#store.run(
        `UPDATE ${USERS_TABLE} SET disabled = 1, tokens_valid_after = ? WHERE username = ?`,
        [nowSeconds() + 1, username],
      );
      return changes > 0;
    }
    const { changes } = await this.#store.run(`UPDATE ${USERS_TABLE} SET disabled = 0 WHERE username = ?`, [
      username,
    ]);
    return changes > 0;
  }

  /**
   * Ends every token issued to the user so far. Tokens carry their issue time in whole seconds, so the
   * cut-off is the start of the next second; tokens issued from now on are dated at it (see TokenService).
   */
  async revokeTokens(username: string): Promise<boolean> {
    const { changes } = await this.#store.run(
      `UPDATE ${USERS_TABLE} SET tokens_valid_after = ? WHERE username = ?`,
      [nowSeconds() + 1, username],
    );
    return changes > 0;
  }

  async remove(username: string): Promise<boolean> {
    return (await this.#store.run(`DELETE FROM ${USERS_TABLE} WHERE username = ?`, [username])).changes > 0;
  }

  /** Changing the password ends every token issued before the change. */
  async setPassword(username: string, password: string): Promise<boolean> {
    const { changes } = await this.#store.run(
      `UPDATE ${USERS_TABLE} SET password_hash = ?, tokens_valid_after = ? WHERE username = ?`,
      [await hashPassword(password), nowSeconds() + 1, username],
    );
    return changes > 0;
  }
}
