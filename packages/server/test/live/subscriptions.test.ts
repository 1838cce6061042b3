/**
 * Table subscriptions and live queries over /api/v1/stream, against the real server: events, filters
 * with enter/leave, consistent snapshots, resume after reconnect, reset, privileges, schema changes,
 * slow consumers, and the admin view.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, sleep, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';
import { within } from '../security/helpers.ts';

type Change = {
  sequence: number;
  op: string;
  table: string;
  key: Record<string, unknown> | null;
  row: Record<string, unknown> | null;
  old_row: Record<string, unknown> | null;
};

const changeOf = (m: ServerMsg): Change => m.payload as unknown as Change;

function nextChange(client: TestClient, id: string, timeoutMs = 3000): Promise<ServerMsg> {
  return client.next((m) => m.id === id && m.type !== 'subscribed', timeoutMs);
}

/** The suites, run once per engine. */
function suite(engine: EngineName): void {
  const { autoId } = dialectOf(engine);

  describe('table subscriptions', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine });
    });
    after(async () => {
      await ts.close();
    });

    test('insert, update and delete arrive in order with rows, old rows, keys and rising sequences', async () => {
      await sql(ts, `CREATE TABLE items (id ${autoId}, name TEXT, price REAL)`);
      const watcher = await ts.connectAuthed();
      const ack = await watcher.subscribed('items', { table: 'items' });
      assert.equal(ack.payload.kind, 'table');
      const attachedAt = ack.payload.sequence as number;
      assert.ok(Number.isInteger(attachedAt) && attachedAt > 0);

      await sql(ts, "INSERT INTO items (name, price) VALUES ('pen', 1.5)");
      await sql(ts, "UPDATE items SET price = 2.5 WHERE name = 'pen'");
      await sql(ts, "DELETE FROM items WHERE name = 'pen'");
      const [ins, upd, del] = await watcher.changes<Change>('items', 3);
      assert.deepEqual([ins!.op, upd!.op, del!.op], ['insert', 'update', 'delete']);
      assert.deepEqual(ins!.row, { id: 1, name: 'pen', price: 1.5 });
      assert.equal(ins!.old_row, null);
      assert.deepEqual(upd!.old_row, { id: 1, name: 'pen', price: 1.5 });
      assert.deepEqual(upd!.row, { id: 1, name: 'pen', price: 2.5 });
      assert.deepEqual(del!.key, { id: 1 });
      assert.equal(del!.row, null);
      assert.deepEqual(
        [ins!.sequence, upd!.sequence, del!.sequence],
        [attachedAt + 1, attachedAt + 2, attachedAt + 3],
      );
    });

    test('a filter turns updates into enter and leave events and hides rows that never match', async () => {
      await sql(ts, `CREATE TABLE tickets (id ${autoId}, status TEXT, priority INTEGER)`);
      const watcher = await ts.connectAuthed();
      await watcher.subscribed('open-urgent', {
        table: 'tickets',
        filter: { status: 'open', priority: { gte: 3 } },
      });
      await sql(ts, "INSERT INTO tickets VALUES (1, 'open', 5)"); // insert (matches)
      await sql(ts, "INSERT INTO tickets VALUES (2, 'open', 1)"); // no event
      await sql(ts, 'UPDATE tickets SET priority = 4 WHERE id = 2'); // enter
      await sql(ts, "UPDATE tickets SET status = 'closed' WHERE id = 1"); // leave
      await sql(ts, 'UPDATE tickets SET priority = 2 WHERE id = 1'); // no event (matched neither before nor after)
      await sql(ts, 'UPDATE tickets SET priority = 9 WHERE id = 2'); // update (matches both)
      await sql(ts, 'DELETE FROM tickets WHERE id = 2'); // delete (was matching)
      await sql(ts, 'DELETE FROM tickets WHERE id = 1'); // no event
      const got = await watcher.changes<Change>('open-urgent', 5);
      assert.deepEqual(
        got.map((c) => [c.op, c.key?.id]),
        [
          ['insert', 1],
          ['enter', 2],
          ['leave', 1],
          ['update', 2],
          ['delete', 2],
        ],
      );
      await assert.rejects(nextChange(watcher, 'open-urgent', 300), /no matching message/);
    });

    test('events limits the kinds delivered', async () => {
      await sql(ts, `CREATE TABLE logs (id ${autoId}, msg TEXT)`);
      const watcher = await ts.connectAuthed();
      await watcher.subscribe('only-inserts', { table: 'logs', events: ['insert'] });
      await sql(ts, "INSERT INTO logs (msg) VALUES ('a')");
      await sql(ts, "UPDATE logs SET msg = 'b'");
      await sql(ts, 'DELETE FROM logs');
      await sql(ts, "INSERT INTO logs (msg) VALUES ('c')");
      const got = await watcher.changes<Change>('only-inserts', 2);
      assert.deepEqual(
        got.map((c) => [c.op, c.row?.msg]),
        [
          ['insert', 'a'],
          ['insert', 'c'],
        ],
      );
    });

    test('a snapshot is consistent with the acknowledged sequence: nothing lost, nothing twice', async () => {
      await sql(ts, `CREATE TABLE counters (id ${autoId}, n INTEGER)`);
      for (let i = 1; i <= 20; i++) await sql(ts, 'INSERT INTO counters VALUES (?, 0)', [i]);
      const writer = await ts.connectAuthed();
      // Keep writing while the subscriber takes its snapshot.
      let writing = true;
      let writes = 0;
      const writerLoop = (async () => {
        while (writing) {
          const id = (writes % 20) + 1;
          const r = await writer.request({
            type: 'query',
            payload: { sql: 'UPDATE counters SET n = n + 1 WHERE id = ?', params: [id] },
          });
          assert.equal(r.type, 'data');
          writes++;
        }
      })();
      await sleep(30);
      const watcher = await ts.connectAuthed();
      watcher.send({ type: 'subscribe', id: 'snap', payload: { table: 'counters', snapshot: true } });
      const ack = await watcher.next((m) => m.id === 'snap' && m.type === 'subscribed');
      const snapshot = await watcher.next((m) => m.id === 'snap' && m.type === 'data');
      assert.equal(snapshot.payload.sequence, ack.payload.sequence);
      await sleep(100);
      writing = false;
      await writerLoop;
      // Apply every change after the snapshot to it: the result must equal the table now.
      const state = new Map<number, number>();
      for (const [id, n] of snapshot.payload.rows as [number, number][]) state.set(id, n);
      const final = await sql(ts, 'SELECT id, n FROM counters ORDER BY id');
      const total = (final.rows as [number, number][]).reduce((s, [, n]) => s + n, 0);
      let applied = [...state.values()].reduce((s, n) => s + n, 0);
      let lastSeq = ack.payload.sequence as number;
      while (applied < total) {
        const c = changeOf(await nextChange(watcher, 'snap'));
        assert.equal(c.sequence, lastSeq + 1, 'sequences follow each other with no gap');
        lastSeq = c.sequence;
        state.set(c.row!.id as number, c.row!.n as number);
        applied = [...state.values()].reduce((s, n) => s + n, 0);
      }
      assert.deepEqual(
        [...state.entries()].sort((a, b) => a[0] - b[0]),
        final.rows.map((r) => [r[0], r[1]]),
      );
      await assert.rejects(nextChange(watcher, 'snap', 200), /no matching message/);
    });

    test('resume with since after a reconnect delivers exactly the missed changes, in order', async () => {
      await sql(ts, `CREATE TABLE notes (id ${autoId}, body TEXT)`);
      const first = await ts.connectAuthed();
      await first.subscribe('n', { table: 'notes' });
      await sql(ts, "INSERT INTO notes (body) VALUES ('one')");
      await sql(ts, "INSERT INTO notes (body) VALUES ('two')");
      const seen = await first.changes<Change>('n', 2);
      first.terminate();
      for (const body of ['three', 'four', 'five'])
        await sql(ts, 'INSERT INTO notes (body) VALUES (?)', [body]);
      const second = await ts.connectAuthed();
      const ack = await second.subscribed('n', { table: 'notes', since: seen[1]!.sequence });
      assert.equal(ack.payload.sequence, seen[1]!.sequence);
      await sql(ts, "INSERT INTO notes (body) VALUES ('six')");
      const resumed = await second.changes<Change>('n', 4);
      assert.deepEqual(
        resumed.map((c) => c.row?.body),
        ['three', 'four', 'five', 'six'],
      );
      for (let i = 1; i < resumed.length; i++)
        assert.equal(resumed[i]!.sequence, resumed[i - 1]!.sequence + 1);
      assert.equal(resumed[0]!.sequence, seen[1]!.sequence + 1);
    });

    test('schema changes are delivered; dropping the table ends the subscription', async () => {
      await sql(ts, `CREATE TABLE shapes (id ${autoId})`);
      const watcher = await ts.connectAuthed();
      await watcher.subscribe('s', { table: 'shapes' });
      await sql(ts, 'ALTER TABLE shapes ADD COLUMN sides INTEGER');
      await sql(ts, 'INSERT INTO shapes (sides) VALUES (3)');
      await sql(ts, 'DROP TABLE shapes');
      const [alter, ins, drop] = await watcher.changes<Change>('s', 3);
      assert.equal(alter!.op, 'schema');
      assert.equal((alter as unknown as { schema: { action: string } }).schema.action, 'alter');
      assert.deepEqual(ins!.row, { id: 1, sides: 3 });
      assert.equal((drop as unknown as { schema: { action: string } }).schema.action, 'drop');
      const end = await watcher.next((m) => m.id === 's' && m.type === 'unsubscribed');
      assert.equal(end.payload.reason, 'table_dropped');
    });

    test('unsubscribe ends delivery; an unknown id gets NOT_FOUND; a missing table TABLE_NOT_FOUND', async () => {
      await sql(ts, `CREATE TABLE quiet (id ${autoId})`);
      const watcher = await ts.connectAuthed();
      await watcher.subscribe('q', { table: 'quiet' });
      watcher.send({ type: 'unsubscribe', id: 'q' });
      const end = await watcher.next((m) => m.id === 'q' && m.type === 'unsubscribed');
      assert.equal(end.payload.reason, 'unsubscribed');
      await sql(ts, 'INSERT INTO quiet DEFAULT VALUES');
      await assert.rejects(nextChange(watcher, 'q', 300), /no matching message/);
      watcher.send({ type: 'unsubscribe', id: 'nope' });
      const missing = await watcher.next((m) => m.id === 'nope');
      assert.equal(missing.payload.code, 'NOT_FOUND');
      const noTable = await watcher.subscribe('x', { table: 'no_such_table' });
      assert.equal(noTable.type, 'error');
      assert.equal(noTable.payload.code, 'TABLE_NOT_FOUND');
      const both = await watcher.subscribe('y', { table: 'quiet', query: 'SELECT 1' });
      assert.equal(both.payload.code, 'INVALID_MESSAGE');
    });

    test('admins list subscriptions with their figures and can end one', async () => {
      await sql(ts, `CREATE TABLE listed (id ${autoId})`);
      const watcher = await ts.connectAuthed();
      await watcher.subscribe('listed-sub', { table: 'listed' });
      await sql(ts, 'INSERT INTO listed DEFAULT VALUES');
      await watcher.changes<Change>('listed-sub', 1);
      const res = await ts.http('/api/v1/subscriptions');
      assert.equal(res.status, 200);
      const data = (res.body as { data: { head: number; subscriptions: Record<string, unknown>[] } }).data;
      const mine = data.subscriptions.find((s) => s.id === 'listed-sub')!;
      assert.equal(mine.kind, 'table');
      assert.equal(mine.target, 'listed');
      assert.equal(mine.delivered, 1);
      assert.equal(mine.user, 'admin');
      const killed = await ts.http(`/api/v1/subscriptions/${String(mine.key)}`, { method: 'DELETE' });
      assert.equal(killed.status, 200);
      const end = await watcher.next((m) => m.id === 'listed-sub' && m.type === 'unsubscribed');
      assert.equal(end.payload.reason, 'killed');
      const again = await ts.http(`/api/v1/subscriptions/${String(mine.key)}`, { method: 'DELETE' });
      assert.equal(again.status, 404);
    });
  });

  describe('subscription limits and history', () => {
    test('a resume from before the retained history gets an explicit reset, never a silent gap', async () => {
      const ts = await startTestServer(
        { enable_rate_limiting: false, changelog_max_entries: 100 },
        { engine },
      );
      try {
        await sql(ts, `CREATE TABLE churn (id ${autoId}, v INTEGER)`);
        const watcher = await ts.connectAuthed();
        const ack = await watcher.subscribe('c', { table: 'churn' });
        const since = ack.payload.sequence as number;
        watcher.terminate();
        await ts.http('/api/v1/batch', {
          body: {
            queries: Array.from({ length: 300 }, (_, i) => ({
              sql: 'INSERT INTO churn (v) VALUES (?)',
              params: [i],
            })),
          },
        });
        await ts.server.feed.prune();
        const again = await ts.connectAuthed();
        const reset = await again.subscribe('c', { table: 'churn', since });
        assert.equal(reset.type, 'reset');
        assert.equal(reset.payload.reason, 'history_unavailable');
        assert.ok((reset.payload.oldest_resumable as number) > since);
        // A position the log never reached is refused the same way.
        const ahead = await again.subscribe('c3', { table: 'churn', since: 10_000_000 });
        assert.equal(ahead.type, 'reset');
        // Resuming from within the window still works.
        await again.subscribed('c2', {
          table: 'churn',
          since: reset.payload.oldest_resumable as number,
        });
      } finally {
        await ts.close();
      }
    });

    test('a subscriber that stops reading is cut off with SLOW_CONSUMER and can resume from resume_from', async () => {
      /** Rows of 20 KB written at most: 40 MB, far beyond subscription_max_buffer and any socket buffers. */
      const MAX_ROWS = 2000;
      const ts = await startTestServer(
        { enable_rate_limiting: false, subscription_max_buffer: 64 * 1024 },
        { engine },
      );
      try {
        await sql(ts, `CREATE TABLE blobs (id ${autoId}, body TEXT)`);
        // Uncompressed: 20 KB of one letter deflates to a few dozen bytes, which the kernel's buffers
        // absorb however many rows are written, and whether the server's queue then passes the limit
        // depends on how fast zlib keeps up (a CI run wrote all 2,000 rows without a SLOW_CONSUMER).
        const watcher = await ts.connectAuthed({ perMessageDeflate: false });
        const ack = await watcher.subscribe('b', { table: 'blobs' });
        // Stop reading: the server's send buffer fills up. How much the kernel's socket buffers take
        // first depends on the machine (loopback buffers grow to several MB), so rows are written until
        // the server gives up on the subscriber and ends its subscription (it is no longer listed),
        // which it must do long before MAX_ROWS. On PostgreSQL changes reach the subscription a moment
        // after their commit: the last check waits for them.
        (watcher.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
        const body = 'x'.repeat(20_000);
        const ended = async (): Promise<boolean> => {
          const res = await ts.http('/api/v1/subscriptions');
          const listed = (res.body as { data: { subscriptions: { id: string }[] } }).data.subscriptions;
          return !listed.some((s) => s.id === 'b');
        };
        let written = 0;
        while (written < MAX_ROWS && !(await ended())) {
          await ts.http('/api/v1/batch', {
            body: {
              queries: Array.from({ length: 20 }, () => ({
                sql: 'INSERT INTO blobs (body) VALUES (?)',
                params: [body],
              })),
            },
          });
          written += 20;
        }
        await within(10_000, ended);
        (watcher.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.resume();
        const overflow = await watcher.next((m) => m.id === 'b' && m.type === 'error', 10_000);
        assert.equal(overflow.payload.code, 'SLOW_CONSUMER');
        const resumeFrom = (overflow.payload.details as { resume_from: number }).resume_from;
        const deliveredBefore = watcher.received.filter((m) => m.id === 'b' && m.type === 'change');
        assert.equal(
          resumeFrom,
          (deliveredBefore.at(-1)?.payload.sequence as number | undefined) ?? ack.payload.sequence,
        );
        const again = await ts.connectAuthed();
        await again.subscribe('b', { table: 'blobs', since: resumeFrom });
        const rest = await again.changes<Change>('b', written - deliveredBefore.length, 10_000);
        const all = [...deliveredBefore.map(changeOf), ...rest];
        assert.equal(all.length, written);
        all.forEach((c, i) => assert.equal(c.sequence, (ack.payload.sequence as number) + 1 + i));
      } finally {
        await ts.close();
      }
    });
  });

  describe('subscription privileges', () => {
    let ts: TestServer;
    let userToken: string;
    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine });
      await sql(ts, `CREATE TABLE open_data (id ${autoId}, v TEXT)`);
      await sql(ts, `CREATE TABLE secret_data (id ${autoId}, v TEXT)`);
      await ts.http('/api/v1/roles', {
        body: { name: 'open_reader', grants: [{ privilege: 'SELECT', table: 'open_data' }] },
      });
      await ts.http('/api/v1/users', {
        body: { username: 'watcher', password: 'watcher-password', roles: ['open_reader'] },
      });
      const login = await ts.http('/api/v1/auth/login', {
        body: { username: 'watcher', password: 'watcher-password' },
        token: null,
      });
      userToken = (login.body as { data: { token: string } }).data.token;
    });
    after(async () => {
      await ts.close();
    });

    test('subscribing to a table or live query the user may not read is refused', async () => {
      const client = await ts.connect({ token: userToken });
      await client.next((m) => m.type === 'auth_success');
      const denied = await client.subscribe('s1', { table: 'secret_data' });
      assert.equal(denied.payload.code, 'PERMISSION_DENIED');
      const deniedQuery = await client.subscribe('s2', {
        query: 'SELECT o.v FROM open_data o JOIN secret_data s ON s.id = o.id',
      });
      assert.equal(deniedQuery.payload.code, 'PERMISSION_DENIED');
      await client.subscribed('s3', { table: 'open_data' });
    });

    test('a revoke ends the running subscription with PERMISSION_DENIED within a second', async () => {
      const client = await ts.connect({ token: userToken });
      await client.next((m) => m.type === 'auth_success');
      await client.subscribe('live', { table: 'open_data' });
      const started = Date.now();
      const revoked = await ts.http('/api/v1/roles/open_reader/grants', {
        method: 'DELETE',
        body: { privilege: 'SELECT', table: 'open_data' },
      });
      assert.equal(revoked.status, 200);
      const ended = await client.next((m) => m.id === 'live' && m.type === 'error', 1500);
      assert.equal(ended.payload.code, 'PERMISSION_DENIED');
      assert.ok(Date.now() - started < 1000);
      await sql(ts, "INSERT INTO open_data (v) VALUES ('after revoke')");
      await assert.rejects(nextChange(client, 'live', 300), /no matching message/);
    });
  });

  describe('live queries', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine });
      await sql(ts, `CREATE TABLE products (id ${autoId}, name TEXT, price INTEGER)`);
      await sql(ts, "INSERT INTO products (name, price) VALUES ('cheap', 1), ('dear', 50)");
    });
    after(async () => {
      await ts.close();
    });

    test('the initial result, then diffs: added, changed and removed rows', async () => {
      const client = await ts.connectAuthed();
      const query = 'SELECT id, name, price FROM products WHERE price > ? ORDER BY id';
      const ack = await client.subscribed('lq', { query, params: [10] });
      assert.equal(ack.payload.kind, 'query');
      const initial = await client.next((m) => m.id === 'lq' && m.type === 'data');
      assert.deepEqual(initial.payload.rows, [[2, 'dear', 50]]);
      assert.equal(initial.payload.sequence, ack.payload.sequence);

      await sql(ts, "INSERT INTO products (name, price) VALUES ('gold', 900)");
      const added = await nextChange(client, 'lq');
      assert.deepEqual(added.payload.added, [[3, 'gold', 900]]);
      assert.ok((added.payload.sequence as number) > (ack.payload.sequence as number));

      await sql(ts, 'UPDATE products SET price = 60 WHERE id = 2');
      const changed = await nextChange(client, 'lq');
      assert.deepEqual(changed.payload.changed, [{ old: [2, 'dear', 50], new: [2, 'dear', 60] }]);

      await sql(ts, 'UPDATE products SET price = 5 WHERE id = 3');
      const removed = await nextChange(client, 'lq');
      assert.deepEqual(removed.payload.removed, [[3, 'gold', 900]]);

      // A change that does not move the result sends nothing.
      await sql(ts, 'UPDATE products SET price = 2 WHERE id = 1');
      await assert.rejects(nextChange(client, 'lq', 300), /no matching message/);
    });

    test('identical live queries from different connections share one evaluation', async () => {
      const query = 'SELECT count(*) AS n FROM products';
      const a = await ts.connectAuthed();
      const b = await ts.connectAuthed();
      await a.subscribe('count', { query });
      await b.subscribe('count', { query });
      await a.next((m) => m.id === 'count' && m.type === 'data');
      await b.next((m) => m.id === 'count' && m.type === 'data');
      const listed = await ts.http('/api/v1/subscriptions');
      const subs = (listed.body as { data: { subscriptions: { target: string; shared_by: number }[] } }).data
        .subscriptions;
      const both = subs.filter((s) => s.target === query);
      assert.equal(both.length, 2);
      assert.ok(both.every((s) => s.shared_by === 2));
      await sql(ts, "INSERT INTO products (name, price) VALUES ('more', 3)");
      const [da, db] = await Promise.all([nextChange(a, 'count'), nextChange(b, 'count')]);
      assert.deepEqual(da.payload, db.payload);
      assert.equal(((da.payload.added as unknown[][])[0] as number[])[0], 4);
    });

    test('a change written while a live query is first evaluated is not lost', async () => {
      // Slow on purpose, so that the insert lands while the first evaluation runs: half a second of
      // sleep on PostgreSQL (a recursive count there is slower than SQLite's by ten times, and its
      // length would depend on the machine's load), a counting loop on SQLite (which has no sleep).
      const slow =
        engine === 'postgres'
          ? '(SELECT 1 FROM pg_sleep(0.5))'
          : '(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c)';
      const query = `SELECT (SELECT count(*) FROM products) AS n, ${slow} AS slow`;
      const client = await ts.connectAuthed();
      const counted = await sql(ts, 'SELECT count(*) FROM products');
      const expected = Number((counted.rows[0] as unknown[])[0]) + 1;
      client.send({ type: 'subscribe', id: 'first', payload: { query } });
      await sleep(50);
      await sql(ts, "INSERT INTO products (name, price) VALUES ('early', 1)");
      // The subscriber's view: its whole result, then each diff; the count it shows must reach the table's.
      let n: number | undefined;
      for (;;) {
        const m = await nextChange(client, 'first', 10_000);
        const rows = (m.type === 'data' ? m.payload.rows : m.payload.added) as number[][] | undefined;
        if (rows?.[0]) n = Number(rows[0][0]);
        if (n === expected) break;
      }
      assert.equal(n, expected);
      // The slow statement is not evaluated again for the writes of the tests that follow.
      client.close();
    });

    test('a burst of writes is coalesced into fewer evaluations than writes', async () => {
      const client = await ts.connectAuthed();
      await client.subscribe('burst', { query: 'SELECT max(price) AS top FROM products' });
      await client.next((m) => m.id === 'burst' && m.type === 'data');
      const writes = 50;
      await ts.http('/api/v1/batch', {
        body: {
          queries: Array.from({ length: writes }, (_, i) => ({
            sql: 'UPDATE products SET price = ? WHERE id = 1',
            params: [1000 + i],
          })),
        },
      });
      const last = await client.next(
        (m) =>
          m.id === 'burst' &&
          m.type === 'change' &&
          JSON.stringify(m.payload.added) === JSON.stringify([[1000 + writes - 1]]),
        3000,
      );
      assert.ok(last);
      const diffs = client.received.filter((m) => m.id === 'burst' && m.type === 'change').length;
      assert.ok(diffs < writes / 2, `expected coalescing, got ${diffs} diffs for ${writes} writes`);
    });

    test('a write statement cannot be a live query', async () => {
      const client = await ts.connectAuthed();
      const res = await client.subscribe('w', { query: "INSERT INTO products (name) VALUES ('x')" });
      assert.equal(res.type, 'error');
      assert.equal(res.payload.code, 'QUERY_ERROR');
      const rows = await sql(ts, "SELECT count(*) FROM products WHERE name = 'x'");
      assert.deepEqual(rows.rows, [[0]]);
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
