/**
 * Attacks that only make sense on PostgreSQL, where privileges are PostgreSQL's own: switching roles
 * (SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION, set_config), search_path tricks, SECURITY DEFINER
 * functions, dynamic SQL, grants made in SQL, the catalog, and the superuser-only and file-system
 * features. Every attempt must fail inside PostgreSQL (PERMISSION_DENIED with SQLSTATE 42501, or the
 * refusal PostgreSQL gives) and leave the data as it was; the engine has no text filter to lean on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { ENGINES } from '../helpers/engines.ts';
import { assertAlive, connectWith, createRole, createUser, runAs, snapshot } from './helpers.ts';

const TABLES = ['pub', 'secret'];

if (ENGINES.includes('postgres')) {
  describe('PostgreSQL-specific attacks', () => {
    let ts: TestServer;
    const tokens: Record<string, string> = {};
    const clients: Record<string, TestClient> = {};
    let initial: Record<string, unknown[][]>;
    let loginRole: string;

    before(async () => {
      ts = await startTestServer({}, { engine: 'postgres' });
      loginRole = new URL(ts.server.config.database_url!).username;
      await sql(ts, 'CREATE TABLE pub (id int PRIMARY KEY, p text)');
      await sql(ts, 'CREATE TABLE secret (id int PRIMARY KEY, s text)');
      await sql(ts, "INSERT INTO pub VALUES (1, 'one'), (2, 'two')");
      await sql(ts, "INSERT INTO secret VALUES (1, 'launch-code')");
      await sql(ts, 'CREATE VIEW v_secret AS SELECT * FROM secret');
      await createRole(ts, 'pub_reader', [
        { privilege: 'SELECT', table: 'pub' },
        { privilege: 'SELECT', table: 'v_secret' },
      ]);
      await createRole(ts, 'builder', [{ privilege: 'CREATE' }, { privilege: 'SELECT', table: 'pub' }]);
      for (const [user, roles] of Object.entries({
        reader: ['pub_reader'],
        builder: ['builder'],
        writer: ['readwrite'],
      })) {
        tokens[user] = await createUser(ts, user, roles);
        clients[user] = await connectWith(ts, tokens[user]);
      }
      initial = await snapshot(ts, TABLES, 'id');
    });
    after(() => ts.close());

    async function run(user: string, statement: string) {
      return runAs(ts, 'stream query', tokens[user]!, clients[user]!, statement);
    }

    /** `user` runs `statement`: refused by PostgreSQL with `sqlstate` (or any error when omitted). */
    async function refused(user: string, statement: string, sqlstate?: string): Promise<void> {
      for (const route of ['stream query', 'http query', 'stream transaction'] as const) {
        const out = await runAs(ts, route, tokens[user]!, clients[user]!, statement);
        assert.notEqual(out.code, 'ok', `${route}: ${statement} ran: ${JSON.stringify(out.rows)}`);
        if (sqlstate)
          assert.equal(out.details?.sqlstate, sqlstate, `${route}: ${statement} → ${JSON.stringify(out)}`);
      }
      assert.deepEqual(await snapshot(ts, TABLES, 'id'), initial, `data changed after: ${statement}`);
    }

    test('control: the reader reads pub and not secret', async () => {
      assert.deepEqual((await run('reader', 'SELECT p FROM pub ORDER BY id')).rows, [['one'], ['two']]);
      const out = await run('reader', 'SELECT s FROM secret');
      assert.equal(out.code, 'PERMISSION_DENIED');
      assert.equal(out.details?.sqlstate, '42501');
    });

    test('a view over a table the reader may not read checks the reader, not the view owner', async () => {
      await refused('reader', 'SELECT * FROM v_secret', '42501');
    });

    test("SET ROLE to any role the reader is not a member of (the admin's, the login role) is refused", async () => {
      // Roles the reader holds already (its own, its RustyDB role, the group of session roles) grant
      // nothing new; every other role of this database must be out of reach. (Only this database's: the
      // tests' PostgreSQL server holds the roles of every test server of the run.)
      const others = (
        await run(
          'reader',
          "SELECT rolname FROM pg_roles WHERE (starts_with(rolname, (SELECT 'rdb' || oid || '_' FROM pg_database WHERE datname = current_database())) OR rolname = current_database()) AND NOT pg_has_role(session_user, oid, 'MEMBER') ORDER BY 1",
        )
      ).rows!.map((r) => r[0] as string);
      for (const expected of ['r_admin', 'r_readwrite', 'tables']) {
        assert.ok(
          others.some((r) => r.endsWith(expected)),
          `${expected} in ${JSON.stringify(others)}`,
        );
      }
      assert.ok(others.includes(loginRole), JSON.stringify(others));
      for (const role of others) {
        await refused('reader', `SET ROLE "${role}"`, '42501');
        await refused('reader', `SELECT set_config('role', '${role}', true), (SELECT count(*) FROM secret)`);
        await refused('reader', `SET SESSION AUTHORIZATION "${role}"`, '42501');
      }
    });

    test('RESET ROLE and SET ROLE NONE leave the reader as the reader', async () => {
      const reset = await run('reader', 'RESET ROLE');
      assert.equal(reset.code, 'ok');
      await refused('reader', 'SELECT s FROM secret', '42501');
      await refused(
        'reader',
        "DO $$ BEGIN RESET ROLE; PERFORM s FROM secret; RAISE EXCEPTION 'read it'; END $$",
        '42501',
      );
      await refused('reader', 'SET ROLE NONE; SELECT s FROM secret');
    });

    test('search_path tricks: the server schema stays out of reach, temporary objects cannot be made', async () => {
      await refused('reader', 'SELECT * FROM rustydb._rustydb_users', '42501');
      await refused('writer', 'SELECT * FROM rustydb._rustydb_users', '42501');
      const set = await run('writer', 'SET search_path = rustydb, public');
      assert.equal(set.code, 'ok');
      await refused('writer', 'SELECT * FROM _rustydb_users');
      await refused('builder', 'CREATE TEMP TABLE pub (id int)', '42501');
      await refused('builder', 'CREATE TABLE pg_temp.pub (id int)', '42501');
      await refused('builder', 'CREATE SCHEMA mine', '42501');
      // The writer's search_path did not follow it to its next statement.
      assert.deepEqual((await run('writer', 'SHOW search_path')).rows, [['public']]);
    });

    test('a SECURITY DEFINER function is no way into what its creator may not read', async () => {
      const made = await run(
        'builder',
        'CREATE FUNCTION leak() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER AS $$ SELECT s FROM secret $$',
      );
      assert.equal(made.code, 'ok', JSON.stringify(made));
      await refused('builder', 'SELECT * FROM leak()', '42501');
    });

    test('a SECURITY DEFINER function of a user who may read is not callable by others', async () => {
      const made = await run(
        'writer',
        'CREATE FUNCTION writer_leak() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER AS $$ SELECT s FROM secret $$',
      );
      assert.equal(made.code, 'ok', JSON.stringify(made));
      assert.deepEqual((await run('writer', 'SELECT * FROM writer_leak()')).rows, [['launch-code']]);
      await refused('reader', 'SELECT * FROM writer_leak()', '42501');
      await refused('reader', 'SELECT * FROM public.writer_leak()', '42501');
    });

    test('a grant made in SQL by a table owner is taken back: RustyDB grants decide', async () => {
      const granted = await run('writer', 'GRANT SELECT ON secret TO PUBLIC');
      assert.equal(granted.code, 'ok', JSON.stringify(granted));
      await refused('reader', 'SELECT s FROM secret', '42501');
      await refused('reader', 'GRANT SELECT ON secret TO PUBLIC', '42501');
    });

    test('dynamic SQL in a DO block is checked like any statement', async () => {
      await refused(
        'reader',
        "DO $$ DECLARE v text; BEGIN EXECUTE 'SELECT s FROM sec' || 'ret' INTO v; RAISE EXCEPTION '%', v; END $$",
        '42501',
      );
    });

    test('several statements in one string are refused', async () => {
      await refused('reader', 'SELECT 1; SELECT s FROM secret');
      await refused('reader', "SELECT 1; DELETE FROM pub WHERE p = 'one'");
    });

    test('catalog reads: no passwords, no statements of other roles, no statistics of unreadable tables', async () => {
      await refused('writer', 'SELECT rolpassword FROM pg_authid', '42501');
      const activity = await run(
        'reader',
        "SELECT query FROM pg_stat_activity WHERE usename NOT LIKE 'rdb%s_%'",
      );
      assert.equal(activity.code, 'ok');
      for (const [query] of activity.rows as string[][]) {
        assert.ok(
          query === null || query === '<insufficient privilege>' || query === '',
          `visible: ${query}`,
        );
      }
      await sql(ts, 'ANALYZE secret');
      const stats = await run(
        'reader',
        "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'secret'",
      );
      assert.deepEqual(stats.rows, []);
      await refused('reader', 'SELECT * FROM pg_statistic', '42501');
    });

    test('superuser and file-system features are out of reach because the roles lack the privilege', async () => {
      await refused('writer', "SELECT pg_read_file('/etc/passwd')", '42501');
      await refused('writer', "SELECT pg_ls_dir('.')", '42501');
      await refused('writer', "SELECT lo_import('/etc/passwd')", '42501');
      await refused('writer', "COPY secret TO PROGRAM 'id'", '42501');
      await refused('writer', "COPY secret FROM '/etc/passwd'", '42501');
      await refused('writer', 'CREATE EXTENSION dblink');
      await refused('writer', "CREATE FUNCTION sh() RETURNS int LANGUAGE c AS 'libc', 'system'", '42501');
      await refused('writer', 'CREATE ROLE intruder SUPERUSER', '42501');
      await refused('writer', 'CREATE ROLE intruder', '42501');
      await refused('writer', 'ALTER SYSTEM SET fsync = off');
      await refused('writer', `ALTER ROLE CURRENT_USER CREATEROLE`, '42501');
    });

    test('the server still serves after every attack', async () => {
      await assertAlive(ts);
    });
  });
}
