/**
 * Tokens revoked before their expiry (logout), by token id (`jti`), kept in an internal table until
 * the token would have expired anyway: after that the signature check refuses it on its own.
 */
import type { InternalStore } from '../engine/engine.ts';
import { INTERNAL_PREFIX } from '../engine/statement-guard.ts';

export const REVOKED_TOKENS_TABLE = `${INTERNAL_PREFIX}revoked_tokens`;

/** How often expired entries are swept out, milliseconds. */
const PURGE_INTERVAL_MS = 10 * 60 * 1000;

export class TokenRevocations {
  readonly #store: InternalStore;
  #lastPurge = 0;

  constructor(store: InternalStore) {
    this.#store = store;
  }

  async migrate(): Promise<void> {
    await this.#store.exec(`CREATE TABLE IF NOT EXISTS ${REVOKED_TOKENS_TABLE} (
      jti TEXT PRIMARY KEY,
      username TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`);
    await this.purge();
  }

  /** @param expiresAt the token's own expiry, seconds since the epoch */
  async revoke(jti: string, username: string, expiresAt: number): Promise<void> {
    await this.#store.run(
      `INSERT INTO ${REVOKED_TOKENS_TABLE} (jti, username, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
      [jti, username, expiresAt],
    );
    if (Date.now() - this.#lastPurge > PURGE_INTERVAL_MS) await this.purge();
  }

  async isRevoked(jti: string): Promise<boolean> {
    const row = await this.#store.get(`SELECT 1 AS revoked FROM ${REVOKED_TOKENS_TABLE} WHERE jti = ?`, [
      jti,
    ]);
    return row !== undefined;
  }

  /** Forgets revocations of tokens that have expired by now. */
  async purge(): Promise<number> {
    this.#lastPurge = Date.now();
    const { changes } = await this.#store.run(`DELETE FROM ${REVOKED_TOKENS_TABLE} WHERE expires_at < ?`, [
      Math.floor(Date.now() / 1000),
    ]);
    return changes;
  }
}
