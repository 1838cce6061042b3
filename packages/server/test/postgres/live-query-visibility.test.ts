/**
 * A commit is decoded from the WAL (and so reaches the change log) a moment before it is visible to new
 * snapshots: the committing backend leaves the proc array only after its WAL flush. A live query
 * re-evaluated in that moment reads a snapshot without the change; it must still end up with the change
 * although nothing else is written.
 *
 * The moment is widened here to as long as the test likes (helpers/own-postgres.ts, inCommitWindow):
 * with `synchronous_standby_names` naming a
 * standby that is not there, a commit with `synchronous_commit = on` is flushed (and decoded) but waits
 * for the standby before it becomes visible; RustyDB's own connections use `local` (the database's
 * default here). Releasing the standby requirement lets the commit become visible with no further write.
 * Runs on a PostgreSQL server of its own, since it changes a server-wide setting.
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

  before(async () => {
    own = await startOwnPostgres();
    ts = await startTestServer({ engine: 'postgres', database_url: own.nodeUrl });
    await sql(ts, 'CREATE TABLE items (id int PRIMARY KEY)');
  });
  after(async () => {
    await ts?.close();
    own?.postgres.stop();
  });

  /**
   * Inserts `id` as the superuser with a commit that is flushed (so decoded and numbered) but not yet
   * visible; runs `during` meanwhile (once the change is in the log), then lets the commit become visible.
   * False when the commit did not wait (see inCommitWindow: the caller tries again).
   */
  const inTheWindow = async (id: number, during: () => Promise<void>): Promise<boolean> => {
    const head = async (): Promise<{ head: number; seen: number }> => {
      const { rows } = (await runStatements(own.superuserOfNode, [
        `SELECT head, (SELECT count(*) FROM public.items WHERE id = ${id})::int AS seen FROM rustydb.capture`,
      ])) as { rows: { head: string; seen: number }[] };
      return { head: Number(rows[0]!.head), seen: rows[0]!.seen };
    };
    const before = (await head()).head;
    return inCommitWindow(own, own.superuserOfNode, `INSERT INTO items VALUES (${id})`, async () => {
      for (;;) {
        const state = await head();
        if (state.head > before) {
          assert.equal(state.seen, 0, 'the window is open: the numbered row is not visible yet');
          break;
        }
        await sleep(10);
      }
      await during();
    });
  };

  /** Runs `scenario` with fresh ids until its write waited in the window (a few tries at most). */
  const untilTheWindowOpens = async (
    firstId: number,
    scenario: (id: number) => Promise<boolean>,
  ): Promise<void> => {
    for (let id = firstId; id < firstId + 5; id++) if (await scenario(id)) return;
    assert.fail('no commit waited for the absent standby');
  };

  test('a live query re-evaluated before the change it was told of is visible still ends up with it', async () => {
    const client = await ts.connectAuthed();
    await untilTheWindowOpens(1, async (id) => {
      const live = `live${id}`;
      client.send({
        type: 'subscribe',
        id: live,
        payload: { query: `SELECT id FROM items WHERE id = ${id}` },
      });
      const first = await client.next((m) => m.id === live && m.type === 'data');
      assert.deepEqual(first.payload.rows, []);
      // Time for the live query to be told of the change and evaluated while the row is not visible.
      if (!(await inTheWindow(id, () => sleep(500)))) return false;
      // No further write: the live query must reach the row by itself.
      const diff = await client.next((m) => m.id === live && m.type === 'change', 5000);
      assert.deepEqual(diff.payload.added, [[id]]);
      return true;
    });
    client.close();
  });

  test('a table snapshot taken before a numbered change is visible names a sequence before it', async () => {
    await untilTheWindowOpens(200, async (id) => {
      const client = await ts.connectAuthed();
      let snapshot: { sequence: number; rows: number[][] } | undefined;
      const opened = await inTheWindow(id, async () => {
        client.send({ type: 'subscribe', id: 'snap', payload: { table: 'items', snapshot: true } });
        const data = await client.next(
          (m) => m.id === 'snap' && (m.type === 'data' || m.type === 'error'),
          10_000,
        );
        assert.equal(data.type, 'data', JSON.stringify(data.payload));
        snapshot = { sequence: data.payload.sequence as number, rows: data.payload.rows as number[][] };
      });
      if (!opened) {
        client.close();
        return false;
      }
      // The snapshot and the changes after its sequence make the table's content, each row once: the
      // row the snapshot could not see comes as a change.
      const ids = snapshot!.rows.map((row) => row[0]);
      assert.ok(!ids.includes(id), JSON.stringify(snapshot));
      const change = await client.next((m) => m.id === 'snap' && m.type === 'change', 5000);
      assert.equal(change.payload.sequence, snapshot!.sequence + 1, JSON.stringify(snapshot));
      assert.deepEqual(change.payload.row, { id }, JSON.stringify(snapshot));
      assert.deepEqual(
        [...ids, id].sort((a, b) => a! - b!),
        (await sql(ts, 'SELECT id FROM items ORDER BY id')).rows.flat(),
      );
      client.close();
      return true;
    });
  });
});
