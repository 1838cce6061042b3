/**
 * Schema changes travel to the change capture as rows of `rustydb.schema_events` (written by
 * rustydb_api.after_ddl() in the DDL's own transaction, decoded from the WAL); none of those rows may
 * stay in the table once its transaction has committed, or the table would grow by one row per DDL
 * forever.
 *
 * A commit is decoded from the WAL (and so applied by the capture) a moment before it is visible to new
 * snapshots: the committing backend leaves the proc array only after its WAL flush. An apply that
 * deleted the events it carried ran its DELETE in that moment, found no visible row, and the row stayed.
 * The moment is widened here to as long as the test likes (helpers/own-postgres.ts, inCommitWindow): with
 * `synchronous_standby_names` naming a standby that is not there, a commit with `synchronous_commit = on`
 * is flushed (and decoded) but waits for the standby before it becomes visible; RustyDB's own
 * connections use `local` (the database's default here). Deployments with synchronous standbys have this
 * moment at every commit: a round trip to the standby. Runs on a PostgreSQL server of its own, since it
 * changes a server-wide setting.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { postgresCases } from '../helpers/engines.ts';
import {
  inCommitWindow,
  runStatements,
  startOwnPostgres,
  type OwnPostgres,
} from '../helpers/own-postgres.ts';

postgresCases('PostgreSQL cases', () => {
  let own: OwnPostgres;
  let ts: TestServer;

  /** The rows left in rustydb.schema_events, as `action table`. */
  const eventsLeft = async (): Promise<string[]> =>
    (
      await runStatements(own.superuserOfNode, [
        "SELECT action || ' ' || tbl AS event FROM rustydb.schema_events ORDER BY id",
      ])
    ).rows.map((row) => String(row.event));

  /** The schema changes numbered in the change log, as `action table`. */
  const schemaChangesLogged = async (): Promise<string[]> =>
    (
      await runStatements(own.superuserOfNode, [
        `SELECT (new_row::jsonb ->> 'action') || ' ' || tbl AS event FROM rustydb.changes
            WHERE op = 'ddl' ORDER BY seq`,
      ])
    ).rows.map((row) => String(row.event));

  before(async () => {
    own = await startOwnPostgres();
    // The node's own login role, as the server's connections that run after_ddl() are.
    ts = await startTestServer({ engine: 'postgres', database_url: own.nodeUrl });
  });
  after(async () => {
    await ts?.close();
    own?.postgres.stop();
  });

  test('schema changes made through the API leave no rows in rustydb.schema_events', async () => {
    await sql(ts, 'CREATE TABLE first (id int PRIMARY KEY)');
    await sql(ts, 'ALTER TABLE first ADD COLUMN note text');
    await sql(ts, 'CREATE TABLE second (id int PRIMARY KEY)');
    await sql(ts, 'DROP TABLE first');
    const expected = ['create first', 'alter first', 'create second', 'drop first'];
    for (let waited = 0; (await schemaChangesLogged()).length < expected.length; waited += 20) {
      assert.ok(waited < 5000, 'the schema changes were numbered');
      await sleep(20);
    }
    assert.deepEqual(await schemaChangesLogged(), expected);
    assert.deepEqual(await eventsLeft(), []);
  });

  test('a schema change decoded and applied before its commit is visible leaves no row either', async () => {
    // A DDL as the server runs one (the statement, then after_ddl() in its transaction), with a commit
    // that waits, flushed and decoded, for the absent standby. The reload reaches the backends a moment
    // after pg_reload_conf(): until a commit is seen waiting, each try uses a table of its own.
    let waited = false;
    for (let attempt = 1; !waited; attempt++) {
      assert.ok(attempt <= 5, 'no commit waited for the absent standby');
      const logged = (await schemaChangesLogged()).length;
      waited = await inCommitWindow(
        own,
        own.nodeUrl,
        `BEGIN; CREATE TABLE waited${attempt} (id int PRIMARY KEY); SELECT rustydb_api.after_ddl(); COMMIT`,
        async () => {
          // The capture numbers the change (and has run whatever its apply runs) while the commit waits.
          for (let polled = 0; (await schemaChangesLogged()).length === logged; polled += 10) {
            assert.ok(polled < 5000, 'the waiting schema change was numbered');
            await sleep(10);
          }
          const { rows } = await runStatements(own.superuserOfNode, [
            `SELECT to_regclass('public.waited${attempt}') IS NULL AS unseen`,
          ]);
          assert.equal(rows[0]!.unseen, true, 'the window is open: the new table is not visible yet');
          assert.deepEqual((await schemaChangesLogged()).slice(logged), [`create waited${attempt}`]);
        },
      );
      if (!waited) {
        // Its commit did not wait: its event went the ordinary way (and must not be left either).
        for (let polled = 0; (await schemaChangesLogged()).length === logged; polled += 10) {
          assert.ok(polled < 5000, 'the schema change was numbered');
          await sleep(10);
        }
        assert.deepEqual(await eventsLeft(), []);
      }
    }
    // Visible now, and nothing else is written: no row of its event is left behind.
    assert.deepEqual(await eventsLeft(), []);
  });

  test('rows an earlier version left behind are deleted when a node starts', async () => {
    // Earlier versions left the row of a schema change decoded before its commit was visible. (Written
    // here as the superuser, the row is also decoded: a schema change of a table nobody has.)
    await runStatements(own.superuserOfNode, [
      "INSERT INTO rustydb.schema_events (tbl, action, sql) VALUES ('gone', 'drop', NULL)",
    ]);
    assert.deepEqual(await eventsLeft(), ['drop gone']);
    const second = await startTestServer({ engine: 'postgres', database_url: own.nodeUrl });
    try {
      assert.deepEqual(await eventsLeft(), []);
    } finally {
      await second.close();
    }
  });
});
