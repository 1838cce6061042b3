/**
 * The SQLite change log is read back a page at a time, as one JSON text when the page is small and row
 * by row when it is large (engine/sqlite/change-log.ts). Whichever way a page was read, a subscriber
 * must get every change once, in order, with the very values a SELECT returns: text with quotes and
 * line separators, reals, integers up to 2^53, blobs, JSON text, NULL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { BULK_READ_BYTES } from '../../src/engine/sqlite/change-log.ts';

type Change = { sequence: number; op: string; key: unknown; row: unknown; old_row: unknown };

/** The table's rows as a SELECT gives them, as objects by column. */
async function selectRows(ts: TestServer, table: string): Promise<Record<string, unknown>[]> {
  const data = await sql(ts, `SELECT * FROM ${table} ORDER BY id`);
  return data.rows.map((row) => Object.fromEntries(data.columns.map((c, i) => [c, row[i]])));
}

describe('values recorded in the change log', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false }, { engine: 'sqlite' });
  });
  after(async () => {
    await ts.close();
  });

  test('a small page of changes carries the values a SELECT returns, in order', async () => {
    await sql(ts, 'CREATE TABLE vals (id INTEGER PRIMARY KEY, t TEXT, r REAL, n INTEGER, b BLOB, j TEXT, z)');
    const watcher = await ts.connectAuthed();
    const attachedAt = (await watcher.subscribed('v', { table: 'vals' })).payload.sequence as number;
    await sql(
      ts,
      `INSERT INTO vals VALUES
         (1, ?, 1.5e300, 9007199254740991, x'00ff10', json('{"a":[1,2,{"b":null}]}'), NULL),
         (2, ?, -0.25, -7, zeroblob(3), '{"not":"parsed"}', 'x'),
         (3, '', 0.1, 0, NULL, NULL, 3.75)`,
      ['quote " back \\ slash \n line \u2028 sep é 😀 ]}', '[1,2]'],
    );
    const inserted = await selectRows(ts, 'vals');
    await sql(ts, "UPDATE vals SET t = t || ',\"]', n = n - 1");
    const updated = await selectRows(ts, 'vals');
    await sql(ts, 'DELETE FROM vals WHERE id IN (1, 3)');

    const got = await watcher.changes<Change>('v', 8, 15_000);
    assert.deepEqual(
      got.map((c) => c.sequence),
      got.map((_, i) => attachedAt + 1 + i),
    );
    assert.deepEqual(
      got.map((c) => c.op),
      ['insert', 'insert', 'insert', 'update', 'update', 'update', 'delete', 'delete'],
    );
    assert.deepEqual(
      got.slice(0, 3).map((c) => c.row),
      inserted,
    );
    assert.deepEqual(
      got.slice(3, 6).map((c) => c.old_row),
      inserted,
    );
    assert.deepEqual(
      got.slice(3, 6).map((c) => c.row),
      updated,
    );
    assert.deepEqual(
      got.slice(6).map((c) => [c.key, c.row, c.old_row]),
      [
        [{ id: 1 }, null, updated[0]],
        [{ id: 3 }, null, updated[2]],
      ],
    );
  });

  test('a page larger than one JSON text is read row by row, with the same values and order', async () => {
    await sql(ts, 'CREATE TABLE wide (id INTEGER PRIMARY KEY, body TEXT, b BLOB)');
    const watcher = await ts.connectAuthed();
    const attachedAt = (await watcher.subscribed('w', { table: 'wide' })).payload.sequence as number;
    // Eight rows whose recorded JSON together passes the bulk read's bound, in one transaction, so that
    // they are one page; then a small change that follows them.
    const rowChars = Math.ceil(BULK_READ_BYTES / 6);
    await sql(
      ts,
      `INSERT INTO wide (id, body, b) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8)
         SELECT x, substr(hex(randomblob(${rowChars})), 1, ${rowChars}), randomblob(16) FROM c`,
    );
    await sql(ts, "UPDATE wide SET body = 'short' WHERE id = 8");
    const rows = await selectRows(ts, 'wide');

    const got = await watcher.changes<Change>('w', 9, 15_000);
    assert.deepEqual(
      got.map((c) => [c.sequence, c.op]),
      got.map((_, i) => [attachedAt + 1 + i, i < 8 ? 'insert' : 'update']),
    );
    assert.deepEqual(
      got.slice(0, 7).map((c) => c.row),
      rows.slice(0, 7),
    );
    assert.deepEqual(got[8]!.row, rows[7]);
    assert.equal((got[8]!.old_row as { body: string }).body.length, rowChars);
    assert.deepEqual((got[7]!.row as { b: unknown }).b, rows[7]!.b);
  });
});
