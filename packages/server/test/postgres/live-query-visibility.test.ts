/**
 * A commit is decoded from the WAL (and so reaches the change log) a moment before it is visible to new
 * snapshots: the committing backend leaves the proc array only after its WAL flush. A live query
 * re-evaluated in that moment reads a snapshot without the change; it must still end up with the change
 * although nothing else is written.
 *
 * The moment is widened here to as long as the test likes: with `synchronous_standby_names` naming a
 * standby that is not there, a commit with `synchronous_commit = on` is flushed (and decoded) but waits
 * for the standby before it becomes visible; RustyDB's own connections use `local` (the database's
 * default here). Releasing the standby requirement lets the commit become visible with no further write.
 * Runs on a PostgreSQL server of its own, since it changes a server-wide setting.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { ENGINES } from '../helpers/engines.ts';
import { startTestPostgres, type TestPostgres } from '../../../../scripts/postgres-for-tests.mjs';

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: { connectionString: string }) => {
    connect(): Promise<void>;
    query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
    end(): Promise<void>;
  };
};

if (!ENGINES.includes('postgres')) {
  test('PostgreSQL cases: no PostgreSQL 15+ on this machine (install postgresql or set RUSTYDB_PG_BIN)', () => {
    assert.ok(!ENGINES.includes('postgres'));
  });
} else {
  let postgres: TestPostgres;
  let ts: TestServer;
  let superuserOfNode: string;

  const asSuperuser = async (statements: string[], url = postgres.url): Promise<unknown> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      let last;
      for (const statement of statements) last = await client.query(statement);
      return last;
    } finally {
      await client.end();
    }
  };

  before(async () => {
    postgres = await startTestPostgres();
    const nodeUrl = await postgres.createDatabase('node', 'node-password');
    await asSuperuser(['ALTER DATABASE node SET synchronous_commit = local']);
    const url = new URL(postgres.url);
    url.pathname = '/node';
    superuserOfNode = url.toString();
    ts = await startTestServer({ engine: 'postgres', database_url: nodeUrl });
    await sql(ts, 'CREATE TABLE items (id int PRIMARY KEY)');
  });
  after(async () => {
    await ts?.close();
    postgres?.stop();
  });

  /**
   * Inserts `id` as the superuser with a commit that is flushed (so decoded and numbered) but not yet
   * visible; runs `during` meanwhile (once the change is in the log), then lets the commit become visible.
   */
  const inTheWindow = async (id: number, during: () => Promise<void>): Promise<void> => {
    const before = Number(
      (
        (await asSuperuser(['SELECT head FROM rustydb.capture'], superuserOfNode)) as {
          rows: { head: string }[];
        }
      ).rows[0]!.head,
    );
    await asSuperuser([
      "ALTER SYSTEM SET synchronous_standby_names = 'rustydb_absent_standby'",
      'SELECT pg_reload_conf()',
    ]);
    const writing = asSuperuser(
      ['SET synchronous_commit = on', `INSERT INTO items VALUES (${id})`],
      superuserOfNode,
    );
    try {
      for (;;) {
        const [state] = (
          (await asSuperuser(
            [
              'SELECT head, (SELECT count(*) FROM public.items WHERE id = ' +
                id +
                ')::int AS seen FROM rustydb.capture',
            ],
            superuserOfNode,
          )) as { rows: { head: string; seen: number }[] }
        ).rows;
        if (Number(state!.head) > before) {
          assert.equal(state!.seen, 0, 'the window is open: the numbered row is not visible yet');
          break;
        }
        await sleep(10);
      }
      await during();
    } finally {
      await asSuperuser(['ALTER SYSTEM RESET synchronous_standby_names', 'SELECT pg_reload_conf()']);
      await writing;
    }
  };

  test('a live query re-evaluated before the change it was told of is visible still ends up with it', async () => {
    const client = await ts.connectAuthed();
    client.send({
      type: 'subscribe',
      id: 'live',
      payload: { query: 'SELECT id FROM items WHERE id < 100 ORDER BY id' },
    });
    const first = await client.next((m) => m.id === 'live' && m.type === 'data');
    assert.deepEqual(first.payload.rows, []);
    await inTheWindow(1, async () => {
      // Time for the live query to be told of the change and evaluated while the row is not visible.
      await sleep(500);
    });
    // No further write: the live query must reach the row by itself.
    const diff = await client.next((m) => m.id === 'live' && m.type === 'change', 5000);
    assert.deepEqual(diff.payload.added, [[1]]);
    client.close();
  });

  test('a table snapshot taken before a numbered change is visible names a sequence before it', async () => {
    const client = await ts.connectAuthed();
    let snapshot: { sequence: number; rows: unknown[] } | undefined;
    await inTheWindow(200, async () => {
      client.send({
        type: 'subscribe',
        id: 'snap',
        payload: { table: 'items', snapshot: true, filter: { id: { gte: 200 } } },
      });
      const data = await client.next(
        (m) => m.id === 'snap' && (m.type === 'data' || m.type === 'error'),
        10_000,
      );
      assert.equal(data.type, 'data', JSON.stringify(data.payload));
      snapshot = { sequence: data.payload.sequence as number, rows: data.payload.rows as unknown[] };
    });
    // Either the snapshot holds the row, or the change that adds it follows it.
    if (snapshot!.rows.length === 0) {
      const change = await client.next((m) => m.id === 'snap' && m.type === 'change', 5000);
      assert.deepEqual(change.payload.row, { id: 200 });
      assert.equal(change.payload.sequence, snapshot!.sequence + 1);
    } else {
      assert.deepEqual(snapshot!.rows, [[200]]);
    }
    client.close();
  });
}
