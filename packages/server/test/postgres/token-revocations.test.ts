/**
 * The revocations of tokens on PostgreSQL (auth/token-revocations.ts): the purge of expired ones, which
 * every node runs at start and then at most every ten minutes, finds them by the index of expiry times,
 * before autovacuum has ever analyzed the table and after, instead of scanning every revocation of a
 * token lifetime; and expiry times past 2038, which a 32-bit column could not hold.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/test-server.ts';
import { postgresCases } from '../helpers/engines.ts';
import {
  startServerOnPostgres,
  type ServerOnPostgres,
  type SuperuserClient,
} from '../helpers/server-on-postgres.ts';
import {
  assertNeverAnalyzed,
  assertReadsByIndex,
  explainAnalyze,
  type QueryPlan,
} from '../helpers/query-plans.ts';
import type { InternalStore } from '../../src/engine/engine.ts';
import { parseStatement } from '../../src/engine/postgres/sql-text.ts';
import { REVOKED_TOKENS_TABLE, TokenRevocations } from '../../src/auth/token-revocations.ts';

postgresCases('PostgreSQL cases', () => {
  describe('purging expired revocations', () => {
    // Revocations spread over the next day, as a day's logouts leave them with the default token
    // lifetime, and a few expired ones. Without the index every purge read the whole table; without
    // statistics and without a lower bound, PostgreSQL scanned it even with the index.
    const TABLE_SIZE = 1500;
    const EXPIRED = 40;
    let server: ServerOnPostgres;
    let ts: TestServer;
    let client: SuperuserClient;
    const rows = (text: string, values?: unknown[]): Promise<unknown[][]> => server.rows(text, values);
    const now = (): number => Math.floor(Date.now() / 1000);
    /** `count` revocations that expired an hour ago. */
    const addExpired = (count: number): Promise<unknown> =>
      rows(
        `INSERT INTO ${REVOKED_TOKENS_TABLE} (jti, username, expires_at)
         SELECT gen_random_uuid()::text, 'gone' || i, $1::int + i FROM generate_series(1, $2::int) i`,
        [now() - 3600, count],
      );

    before(async () => {
      server = await startServerOnPostgres();
      ({ ts, client } = server);
      // The superuser connection to the server's database, naming its tables as the server does.
      await rows('SET search_path = rustydb');
      // The first plans that matter are those made without statistics: autovacuum must not analyze the
      // table while the test runs (on a server of many test databases it comes by every few seconds).
      await rows(`ALTER TABLE ${REVOKED_TOKENS_TABLE} SET (autovacuum_enabled = false)`);
      await rows(
        `INSERT INTO ${REVOKED_TOKENS_TABLE} (jti, username, expires_at)
         SELECT gen_random_uuid()::text, 'user' || (i % 500), $1::int + i * 86400 / $2::int
           FROM generate_series(1, $2::int) i`,
        [now() + 600, TABLE_SIZE - EXPIRED],
      );
      await addExpired(EXPIRED);
    });
    after(() => server.close());

    test('a purge deletes exactly the expired revocations, found by index, in a table never analyzed and once analyzed', async () => {
      // The server's own store, its statements on the revocations explained first.
      const store = ts.server.engine.internal;
      const plans: QueryPlan[] = [];
      const explaining: InternalStore = {
        ...store,
        run: async (sql, params = []) => {
          const { text } = parseStatement(sql);
          plans.push(await explainAnalyze(client, text, [...params], REVOKED_TOKENS_TABLE));
          return store.run(sql, params);
        },
      };
      const revocations = new TokenRevocations(explaining);
      const left = async (): Promise<number> =>
        Number((await rows(`SELECT count(*) FROM ${REVOKED_TOKENS_TABLE}`))[0]![0]);

      await assertNeverAnalyzed(client, REVOKED_TOKENS_TABLE);
      assert.equal(await revocations.purge(), EXPIRED);
      assert.equal(await left(), TABLE_SIZE - EXPIRED);

      await addExpired(EXPIRED);
      await rows(`ANALYZE ${REVOKED_TOKENS_TABLE}`);
      assert.equal(await revocations.purge(), EXPIRED);
      assert.equal(await left(), TABLE_SIZE - EXPIRED);

      assert.equal(plans.length, 2);
      // The expired revocations, and the earliest once more for the lower bound.
      for (const plan of plans) assertReadsByIndex(plan, REVOKED_TOKENS_TABLE, EXPIRED + 1);
    });
  });

  describe('expiry times past 2038', () => {
    let server: ServerOnPostgres;

    before(async () => {
      server = await startServerOnPostgres();
    });
    after(() => server.close());

    test('a token expiring after 2038 is revoked, also in a table made when expiry times had 32 bits', async () => {
      const store = server.ts.server.engine.internal;
      const columnType = async (): Promise<string | undefined> =>
        (
          await store.get<{ type: string }>(
            `SELECT data_type AS type FROM information_schema.columns
              WHERE table_name = '${REVOKED_TOKENS_TABLE}' AND column_name = 'expires_at'`,
          )
        )?.type;
      // The table as servers made it before: a 32-bit column, taken to 64 bits at the next start.
      await store.exec(`ALTER TABLE ${REVOKED_TOKENS_TABLE} ALTER COLUMN expires_at TYPE INTEGER`);
      const revocations = new TokenRevocations(store);
      await revocations.migrate();
      assert.equal(await columnType(), 'bigint');
      // 2100-01-01: an identity provider's long-lived token.
      await revocations.revoke('far-future-token', 'someone', 4_102_444_800);
      assert.equal(await revocations.isRevoked('far-future-token'), true);
    });
  });
});
