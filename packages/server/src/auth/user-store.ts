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
}

interface UserRow {
  username: string;
  password_hash: string;
  roles: string;
  disabled: number;
}

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
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${USERS_TABLE} (
      username TEXT PRIMARY KEY,
      password_hash TEXT NOT NULL,
      roles TEXT NOT NULL DEFAULT '[]',
      disabled INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`);
  }

  async find(username: string): Promise<UserRecord | undefined> {
    const row = await this.#store.get<UserRow>(
      `SELECT username, password_hash, roles, disabled FROM ${USERS_TABLE} WHERE username = ?`,
      [username],
    );
    if (!row) return undefined;
    return {
      username: row.username,
      passwordHash: row.password_hash,
      roles: JSON.parse(row.roles) as string[],
      disabled: row.disabled !== 0,
    };
  }

  async count(): Promise<number> {
    const row = await this.#store.get<{ n: number }>(`SELECT count(*) AS n FROM ${USERS_TABLE}`);
    return row?.n ?? 0;
  }

  async create(username: string, password: string, roles: string[]): Promise<void> {
    if (!isValidUsername(username)) throw new Error(`invalid username '${username}'`);
    await this.#store.run(`INSERT INTO ${USERS_TABLE} (username, password_hash, roles) VALUES (?, ?, ?)`, [
      username,
      await hashPassword(password),
      JSON.stringify(roles),
    ]);
  }

  async list(): Promise<Omit<UserRecord, 'passwordHash'>[]> {
    const rows = await this.#store.all<UserRow>(
      `SELECT username, password_hash, roles, disabled FROM ${USERS_TABLE} ORDER BY username`,
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

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    const { changes } = await this.#store.run(`UPDATE ${USERS_TABLE} SET disabled = ? WHERE username = ?`, [
      disabled ? 1 : 0,
      username,
    ]);
    return changes > 0;
  }

  async remove(username: string): Promise<boolean> {
    return (await this.#store.run(`DELETE FROM ${USERS_TABLE} WHERE username = ?`, [username])).changes > 0;
  }

  async setPassword(username: string, password: string): Promise<boolean> {
    const { changes } = await this.#store.run(
      `UPDATE ${USERS_TABLE} SET password_hash = ? WHERE username = ?`,
      [await hashPassword(password), username],
    );
    return changes > 0;
  }
}
