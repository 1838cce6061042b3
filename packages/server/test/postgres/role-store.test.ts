/**
 * Roles and grants on PostgreSQL (auth/role-store.ts): one role is read by its keys, its own row and
 * grants, not every role and grant. Every user's privileges are loaded that way, per role they hold,
 * again after every change of privileges on any node.
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
import { GRANTS_TABLE, ROLES_TABLE, RoleStore } from '../../src/auth/role-store.ts';

postgresCases('PostgreSQL cases', () => {
  describe('reading a role', () => {
    // Besides the built-in roles, ROLES roles of four grants each.
    const ROLES = 100;
    let server: ServerOnPostgres;
    let ts: TestServer;
    let client: SuperuserClient;
    const rows = (text: string, values?: unknown[]): Promise<unknown[][]> => server.rows(text, values);

    before(async () => {
      server = await startServerOnPostgres();
      ({ ts, client } = server);
      // The superuser connection to the server's database, naming its tables as the server does.
      await rows('SET search_path = rustydb');
      // Plans made without statistics: autovacuum must not analyze the tables while the test runs.
      for (const table of [ROLES_TABLE, GRANTS_TABLE]) {
        await rows(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
      }
      await rows(
        `INSERT INTO ${ROLES_TABLE} (name, description) SELECT 'role' || i, 'role ' || i FROM generate_series(1, $1::int) i`,
        [ROLES],
      );
      await rows(
        `INSERT INTO ${GRANTS_TABLE} (role, privilege, table_name)
         SELECT 'role' || i, p, 'table' || (i % 30) FROM generate_series(1, $1::int) i,
                unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p`,
        [ROLES],
      );
    });
    after(() => server.close());

    /** A RoleStore on the server's own store whose reads are each explained first (into `plans`). */
    function explainingRoles(plans: QueryPlan[]): RoleStore {
      const store = ts.server.engine.internal;
      const explain = async (sql: string, params: readonly unknown[] = []): Promise<void> => {
        const table = sql.includes(GRANTS_TABLE) ? GRANTS_TABLE : ROLES_TABLE;
        plans.push(await explainAnalyze(client, parseStatement(sql).text, [...params], table));
      };
      const explaining: InternalStore = {
        ...store,
        get: async (sql, params) => {
          await explain(sql, params);
          return store.get(sql, params);
        },
        all: async (sql, params) => {
          await explain(sql, params);
          return store.all(sql, params);
        },
      };
      return new RoleStore(explaining);
    }

    test('the grants of several roles are read by the primary key, not the whole grants table', async () => {
      // Before the table was ever analyzed, `role IN (…)` of two roles or more was planned as a scan
      // of every grant at this size (a few hundred to a few thousand grants).
      const plans: QueryPlan[] = [];
      const roles = explainingRoles(plans);
      await assertNeverAnalyzed(client, GRANTS_TABLE);
      for (const held of [
        ['role7', 'role42'],
        ['role9', 'role30', 'role100'],
        ['role8', 'readonly'],
      ]) {
        plans.length = 0;
        const grants = await roles.grantsSince(held);
        const expected = [];
        for (const name of held) {
          const role = (await roles.get(name))!;
          expected.push(...role.grants.map((grant) => ({ role: name, ...grant, since: 0 })));
        }
        const order = (a: { role: string; privilege: string }, b: { role: string; privilege: string }) =>
          `${a.role} ${a.privilege}`.localeCompare(`${b.role} ${b.privilege}`);
        assert.deepEqual(grants.sort(order), expected.sort(order));
        assertReadsByIndex(plans[0]!, GRANTS_TABLE, expected.length);
      }
      // One role, and roles with no grants or that do not exist.
      assert.equal((await roles.grantsSince(['role7'])).length, 4);
      assert.deepEqual(await roles.grantsSince(['nobody', 'no-one']), []);
      assert.deepEqual(await roles.grantsSince([]), []);
    });

    test('a role is read by its keys: PostgreSQL answers its row and its grants, not every role and grant', async () => {
      // The server's own store, its reads of roles and grants explained first.
      const plans: QueryPlan[] = [];
      const roles = explainingRoles(plans);
      await assertNeverAnalyzed(client, GRANTS_TABLE);

      const role = await roles.get('role7');
      assert.deepEqual(role, {
        name: 'role7',
        description: 'role 7',
        builtin: false,
        grants: ['DELETE', 'INSERT', 'SELECT', 'UPDATE'].map((privilege) => ({ privilege, table: 'table7' })),
      });
      assert.deepEqual(
        plans.map((plan) => plan.rowsReturned),
        [1, 4],
        `${plans.map((plan) => `${plan.query}\n${plan.scans}`).join('\n')}`,
      );
      assert.match(plans[0]!.scans, /Index Scan on _rustydb_roles using _rustydb_roles_pkey/);

      // The same answers as the list of every role, for each role (built-in ones too) and for none.
      plans.length = 0;
      const all = await roles.list();
      for (const { name } of all.slice(0, 10)) {
        assert.deepEqual(
          await roles.get(name),
          all.find((r) => r.name === name),
        );
      }
      assert.equal(await roles.get('nobody'), undefined);
    });
  });
});
