/**
 * Change capture on PostgreSQL (logical decoding, see docs/postgres.md): changes reach subscribers in
 * commit order, not in the order transactions began or wrote, each exactly once and with dense
 * sequences; snapshots name the sequence they reflect; and when the node reading the replication slot
 * goes away, another takes it over without losing or repeating a change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg } from '../helpers/ws-client.ts';
import { dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';
import { superuserClient, type SuperuserClient } from '../helpers/server-on-postgres.ts';
import type { PostgresEngine } from '../../src/engine/postgres/postgres-engine.ts';
import { PgChangeLog } from '../../src/engine/postgres/change-log.ts';
import {
  assertNeverAnalyzed,
  assertReadsByIndex,
  explainAnalyze,
  type QueryPlan,
} from '../helpers/query-plans.ts';

const reading = (ts: TestServer): boolean => (ts.server.engine as PostgresEngine).capturing;

type Change = { sequence: number; op: string; row: Record<string, unknown> | null };

/**
 * A change log on `client` (a superuser connection to a test server's database) that first runs each of
 * its queries of rustydb.changes under EXPLAIN ANALYZE, in a transaction it rolls back (so that a
 * DELETE deletes once), and keeps the plans. It checks first that the log was never analyzed: the
 * plans that matter are those PostgreSQL makes without statistics.
 */
async function explainingChangeLog(
  client: SuperuserClient,
): Promise<{ log: PgChangeLog; plans: QueryPlan[] }> {
  await assertNeverAnalyzed(client, 'changes');
  const plans: QueryPlan[] = [];
  const log = new PgChangeLog(
    async (text, values = []) => {
      if (text.includes('FROM rustydb.changes')) {
        plans.push(await explainAnalyze(client, text, values, 'changes'));
      }
      return (await client.query({ text, values, rowMode: 'array' })).rows;
    },
    (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  );
  return { log, plans };
}

/** A query that reads a handful of the log's 1,500 entries by index, not the whole log. */
const assertReadsLogByIndex = (plan: QueryPlan): void => assertReadsByIndex(plan, 'changes', 20);

postgresCases('PostgreSQL cases', () => {
  describe('commit order', () => {
    let ts: TestServer;
    let databaseUrl: string;
    before(async () => {
      const engine = await engineConfig('postgres');
      databaseUrl = engine.database_url!;
      ts = await startTestServer({ enable_rate_limiting: false, ...engine });
    });
    after(async () => {
      await ts.close();
      await dropCaptureSlot(databaseUrl);
    });

    test('transactions that write in one order and commit in another arrive in commit order, once each', async () => {
      await sql(ts, 'CREATE TABLE ledger (id int PRIMARY KEY, note text)');
      const watcher = await ts.connectAuthed();
      const ack = await watcher.subscribed('all', { table: 'ledger' });
      const start = ack.payload.sequence as number;
      const [a, b, c] = [
        await superuserClient(databaseUrl),
        await superuserClient(databaseUrl),
        await superuserClient(databaseUrl),
      ];
      try {
        // A begins and writes first (a trigger-filled sequence column would number it first)...
        await a.query('BEGIN');
        await a.query("INSERT INTO ledger VALUES (1, 'a: first write')");
        await c.query('BEGIN');
        await c.query("INSERT INTO ledger VALUES (3, 'c')");
        // ...B writes later and commits before both.
        await b.query("INSERT INTO ledger VALUES (2, 'b')");
        // A snapshot now sees B only; what it does not see must all follow its sequence.
        const snapWatcher = await ts.connectAuthed();
        snapWatcher.send({ type: 'subscribe', id: 'snap', payload: { table: 'ledger', snapshot: true } });
        const snapAck = await snapWatcher.next((m) => m.id === 'snap' && m.type === 'subscribed');
        const snapshot = await snapWatcher.next((m) => m.id === 'snap' && m.type === 'data');
        assert.deepEqual(snapshot.payload.rows, [[2, 'b']]);
        await a.query("INSERT INTO ledger VALUES (4, 'a: second write')");
        await a.query('COMMIT');
        await c.query('COMMIT');

        const seen = await watcher.changes<Change>('all', 4);
        assert.deepEqual(
          seen.map((change) => change.row!.id),
          [2, 1, 4, 3],
          'commit order: B, then A (both its rows), then C',
        );
        assert.deepEqual(
          seen.map((change) => change.sequence),
          [start + 1, start + 2, start + 3, start + 4],
        );
        assert.equal(snapAck.payload.sequence, start + 1);
        const afterSnapshot = await snapWatcher.changes<Change>('snap', 3);
        assert.deepEqual(
          afterSnapshot.map((change) => [change.sequence, change.row!.id]),
          [
            [start + 2, 1],
            [start + 3, 4],
            [start + 4, 3],
          ],
        );
        // Resuming from any point gives exactly the rest.
        const resumer = await ts.connectAuthed();
        await resumer.subscribed('resume', { table: 'ledger', since: start + 2 });
        assert.deepEqual(
          (await resumer.changes<Change>('resume', 2)).map((change) => change.row!.id),
          [4, 3],
        );
        await assert.rejects(
          watcher.next((m) => m.id === 'all' && m.type === 'change', 300),
          /no matching message/,
        );
      } finally {
        await Promise.all([a, b, c].map((client) => client.end()));
      }
    });

    test('a transaction of more rows than one apply statement takes arrives whole, in order, once', async () => {
      // The capture numbers at most 5,000 records per statement; a bigger transaction is applied in
      // several within one transaction, the applied position moving only with the last.
      const total = 12_345;
      await sql(ts, 'CREATE TABLE bulk (n int PRIMARY KEY)');
      const watcher = await ts.connectAuthed();
      const ack = await watcher.subscribed('bulk', { table: 'bulk' });
      const start = ack.payload.sequence as number;
      await sql(ts, `INSERT INTO bulk SELECT generate_series(1, ${total})`);
      await sql(ts, 'INSERT INTO bulk VALUES (-1)');
      const seen = await watcher.changes<Change>('bulk', total + 1, 20_000);
      assert.deepEqual(
        seen.map((change) => change.row!.n),
        [...Array.from({ length: total }, (_, i) => i + 1), -1],
      );
      seen.forEach((change, i) => assert.equal(change.sequence, start + 1 + i));
      await assert.rejects(
        watcher.next((m) => m.id === 'bulk' && m.type === 'change', 300),
        /no matching message/,
      );
    });

    test('the slot is told what was applied, so that it releases the WAL behind it, also after a burst', async () => {
      // Positions are confirmed at most every 100 ms while changes flow (each update wakes the
      // walsender): the last of a burst must still reach the slot once the database is quiet.
      await sql(ts, 'CREATE TABLE confirmed (n int PRIMARY KEY)');
      const watcher = await ts.connectAuthed();
      await watcher.subscribed('confirmed', { table: 'confirmed' });
      for (let n = 1; n <= 20; n++) await sql(ts, 'INSERT INTO confirmed VALUES (?)', [n]);
      await watcher.changes<Change>('confirmed', 20);
      const superuser = await superuserClient(databaseUrl);
      try {
        const [[written]] = (
          await superuser.query({
            text: 'SELECT pg_current_wal_lsn()::text',
            values: [],
            rowMode: 'array',
          })
        ).rows as [[string]];
        let behind = true;
        for (let waited = 0; behind && waited < 15_000; waited += 200) {
          const [slot] = (
            await superuser.query({
              text: `SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots
                      WHERE database = current_database()`,
              values: [written],
              rowMode: 'array',
            })
          ).rows;
          behind = slot?.[0] !== true;
          if (behind) await sleep(200);
        }
        assert.equal(behind, false, `the slot's confirmed position stayed behind ${written}`);
      } finally {
        await superuser.end();
      }
    });

    test('applying changes that carry no schema event does not touch rustydb.schema_events', async () => {
      // Most applies carry no schema event, and skip deleting the applied ones: they go on while
      // another transaction holds a lock on the table that any write to it would wait for.
      await sql(ts, 'CREATE TABLE unlocked (n int PRIMARY KEY)');
      const watcher = await ts.connectAuthed();
      await watcher.subscribed('unlocked', { table: 'unlocked' });
      const superuser = await superuserClient(databaseUrl);
      try {
        await superuser.query('BEGIN');
        await superuser.query('LOCK TABLE rustydb.schema_events IN SHARE MODE');
        await sql(ts, 'INSERT INTO unlocked VALUES (1), (2)');
        const seen = await watcher.changes<Change>('unlocked', 2, 3000);
        assert.deepEqual(
          seen.map((change) => change.row!.n),
          [1, 2],
        );
        await superuser.query('ROLLBACK');
        // (That schema changes leave no row in the table is schema-events.test.ts's to check.)
      } finally {
        await superuser.end();
      }
    });

    test("a snapshot's sequence on an idle database takes two round trips: the applied position with the tick, then with the log", async () => {
      // On an idle database the applied position is always behind a new snapshot's WAL position (by the
      // capture's own last apply), so the snapshot always needs a tick.
      await sql(ts, 'CREATE TABLE idle_snap (n int PRIMARY KEY)');
      const superuser = await superuserClient(databaseUrl);
      const listener = await superuserClient(databaseUrl);
      try {
        const waiting = new Set<() => void>();
        (listener as unknown as NodeJS.EventEmitter).on('notification', () => {
          for (const done of [...waiting]) done();
        });
        await listener.query('LISTEN rustydb_changes');
        const sent: string[] = [];
        const log = new PgChangeLog(
          async (text, values = []) => {
            sent.push(text);
            return (await superuser.query({ text, values, rowMode: 'array' })).rows;
          },
          (ms) =>
            new Promise((resolve) => {
              const done = (): void => {
                clearTimeout(timer);
                waiting.delete(done);
                resolve();
              };
              const timer = setTimeout(done, ms);
              waiting.add(done);
            }),
        );
        const snapshot = async (): Promise<[string, string]> => {
          await superuser.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          const { rows } = await superuser.query({
            text: 'SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text',
            values: [],
            rowMode: 'array',
          });
          await superuser.query('COMMIT');
          return rows[0] as [string, string];
        };
        const before = await log.head();
        for (let n = 1; n <= 3; n++) {
          // A row committed just before the snapshot, then none.
          await sql(ts, 'INSERT INTO idle_snap VALUES (?)', [n]);
          sent.length = 0;
          assert.equal(await log.sequenceOfSnapshot(...(await snapshot()), 5000), before + n);
          await sleep(50);
          sent.length = 0;
          assert.equal(await log.sequenceOfSnapshot(...(await snapshot()), 5000), before + n);
          assert.equal(sent.length, 2, sent.join('\n'));
          assert.match(sent[0]!, /applied_or_tick/);
          assert.match(sent[1]!, /FROM rustydb\.changes/);
        }
      } finally {
        await listener.end();
        await superuser.end();
      }
    });

    test('a table created through the API is subscribable on the very next request', async () => {
      const client = await ts.connectAuthed();
      const made = await client.request({
        type: 'query',
        payload: { sql: 'CREATE TABLE fresh (id int PRIMARY KEY)' },
      });
      assert.equal(made.type, 'data');
      const ack = await client.subscribed('fresh', { table: 'fresh' });
      const wrote = await client.request({ type: 'query', payload: { sql: 'INSERT INTO fresh VALUES (7)' } });
      assert.equal(wrote.type, 'data');
      const [change] = await client.changes<Change>('fresh', 1);
      assert.deepEqual(change!.row, { id: 7 });
      assert.equal(change!.sequence, (ack.payload.sequence as number) + 1);
    });

    test('subscriptions made at once while rows commit start after every commit acknowledged before each was asked, missing none after', async () => {
      // Subscribes at once share the database look that finds where each starts (PgChangeLog.head): a
      // look begun before a subscribe was asked may not cover a commit acknowledged just before it.
      await sql(ts, 'CREATE TABLE burst (id int PRIMARY KEY)');
      const writer = await superuserClient(databaseUrl);
      const client = await ts.connectAuthed();
      const rows = 120;
      let acknowledged = 0;
      const asked: { id: string; ackedBefore: number; reply: Promise<ServerMsg> }[] = [];
      try {
        const writing = (async () => {
          for (let id = 1; id <= rows; id++) {
            await writer.query('INSERT INTO burst VALUES ($1)', [id]);
            acknowledged = id;
          }
        })();
        for (let n = 0; n < 60; n++) {
          const id = `b${n}`;
          asked.push({ id, ackedBefore: acknowledged, reply: client.subscribe(id, { table: 'burst' }) });
          await new Promise((resolve) => setTimeout(resolve, n % 3 === 0 ? 1 : 0));
        }
        await writing;
        await Promise.all(asked.map((a) => a.reply));
        // One row more, committed after every subscription started: each is sent at least that one.
        await writer.query('INSERT INTO burst VALUES ($1)', [rows + 1]);
        for (const { id, ackedBefore, reply } of asked) {
          const ack = await reply;
          assert.equal(ack.type, 'subscribed', JSON.stringify(ack));
          const start = ack.payload.sequence as number;
          // Rows are numbered in commit order: the first row the subscription is sent is one after those
          // acknowledged before it was asked, and from there it gets every row, in order, once.
          const first = await client.next((m) => m.id === id && m.type === 'change', 10_000);
          const firstChange = first.payload as unknown as Change;
          assert.equal(firstChange.sequence, start + 1);
          const firstId = firstChange.row!.id as number;
          assert.ok(firstId > ackedBefore, `${id} was sent row ${firstId}, acknowledged before it asked`);
          const rest = await client.changes<Change>(id, rows + 1 - firstId, 10_000);
          assert.deepEqual(
            rest.map((c) => [c.sequence, c.row!.id]),
            rest.map((_, i) => [start + 2 + i, firstId + 1 + i]),
          );
        }
      } finally {
        await writer.end();
      }
    });
    test('a head asked while an earlier look runs covers the commits acknowledged before it was asked', async () => {
      // Looks are shared by callers at once; one that read the WAL position before a commit must not
      // answer a caller that came after that commit's acknowledgement. The log here reads the capture's
      // state as the server's does, and holds the first look's last answer back until the second call.
      await sql(ts, 'CREATE TABLE looked (id int PRIMARY KEY)');
      const reader = await superuserClient(databaseUrl);
      const writer = await superuserClient(databaseUrl);
      let reachedHead!: () => void;
      const reached = new Promise<void>((resolve) => (reachedHead = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = false;
      const log = new PgChangeLog(
        async (text, values = []) => {
          const { rows } = await reader.query({ text, values, rowMode: 'array' });
          if (!held && text.startsWith('SELECT applied_lsn::text, head FROM')) {
            held = true;
            reachedHead();
            await released;
          }
          return rows;
        },
        (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      );
      try {
        const first = log.head();
        await reached;
        await writer.query('INSERT INTO looked VALUES (1)');
        const second = log.head();
        release();
        const [before, after] = await Promise.all([first, second]);
        const [row] = (
          await reader.query({
            text: "SELECT max(seq) FROM rustydb.changes WHERE tbl = 'looked' AND op = 'insert'",
            values: [],
            rowMode: 'array',
          })
        ).rows;
        const inserted = Number(row![0]);
        assert.ok(before < inserted, 'the first look ran before the insert');
        assert.ok(after >= inserted, `head ${after} asked after the insert's commit misses it (${inserted})`);
      } finally {
        release();
        await Promise.all([reader.end(), writer.end()]);
      }
    });
  });

  describe('reading the log', () => {
    // A database of its own: the log holds exactly what these tests write, first LOG_SIZE entries of one
    // statement. At that size, with no statistics (until autovacuum first analyzes rustydb.changes), the
    // planner took scanning the whole log for the cheaper plan of an open-ended condition (for the read
    // of new entries from a few hundred entries to about 15,000, for the sequence of a snapshot up to a
    // few thousand, for pruning's delete at every size tried, 200 to 30,000). Each test asks the log as
    // the server does and checks the plans of its queries.
    const LOG_SIZE = 1500;
    let ts: TestServer;
    let databaseUrl: string;
    let reader: SuperuserClient;
    /** Rows of later single-row commits, numbered after the first LOG_SIZE. */
    let inserted = LOG_SIZE;
    const insertOne = (): Promise<unknown> => sql(ts, `INSERT INTO unanalyzed VALUES (${++inserted})`);
    before(async () => {
      const engine = await engineConfig('postgres');
      databaseUrl = engine.database_url!;
      ts = await startTestServer({ enable_rate_limiting: false, ...engine });
      await sql(ts, 'CREATE TABLE unanalyzed (id int PRIMARY KEY)');
      await sql(ts, `INSERT INTO unanalyzed SELECT generate_series(1, ${LOG_SIZE})`);
      reader = await superuserClient(databaseUrl);
    });
    after(async () => {
      await reader.end();
      await ts.close();
      await dropCaptureSlot(databaseUrl);
    });

    test('the newest entries of a log never analyzed are read by index, not by scanning and sorting the whole log', async () => {
      // Every node reads the log's new entries after each NOTIFY of the capture; a plan that scanned and
      // sorted the whole log cost each read time in proportion to the log's size (0.7 ms at 11,000 entries).
      const { log, plans } = await explainingChangeLog(reader);
      const head = await log.head();
      const records = await log.read(head - 3, 1000);
      assert.deepEqual(
        records.map((r) => r.seq),
        [head - 2, head - 1, head],
      );
      assert.equal(plans.length, 1);
      assertReadsLogByIndex(plans[0]!);
    });

    test('the sequence of a snapshot is found by index in a log never analyzed', async () => {
      // Live queries name the sequence of their snapshot on every refresh, and snapshot subscribes on
      // every subscribe: two queries of the log's entries of transactions at or after the snapshot's xmin.
      const { log, plans } = await explainingChangeLog(reader);
      const seen = await log.head();
      const [[snapshot, lsn]] = (
        await reader.query({
          text: 'SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text',
          values: [],
          rowMode: 'array',
        })
      ).rows as [[string, string]];
      // Commits the snapshot does not see: it reflects the log up to the last it does.
      for (let i = 0; i < 3; i++) await insertOne();
      await log.head();
      plans.length = 0;
      assert.equal(await log.sequenceOfSnapshot(snapshot, lsn, 10_000), seen);
      assert.equal(plans.length, 2, 'both queries ran: the records after the snapshot, then a check of them');
      for (const plan of plans) assertReadsLogByIndex(plan);
    });

    test('the sequence before a time and the latest creation of a table are found by index in a log never analyzed', async () => {
      // Both were planned well already (the first by the ts index backward, the second by the partial
      // index of schema changes); checked so that they stay so.
      const { log, plans } = await explainingChangeLog(reader);
      await insertOne();
      const head = await log.head();
      assert.equal(await log.sequenceBefore(Date.now() + 60_000), head);
      const [[created]] = (
        await reader.query({
          text: "SELECT max(seq) FROM rustydb.changes WHERE op = 'ddl' AND tbl = 'unanalyzed'",
          values: [],
          rowMode: 'array',
        })
      ).rows as [[unknown]];
      assert.equal(await log.incarnation('unanalyzed'), Number(created));
      assert.equal(plans.length, 2);
      for (const plan of plans) assertReadsLogByIndex(plan);
    });

    // Last: it deletes the oldest entries.
    test('pruning a log never analyzed finds and deletes the oldest entries by index', async () => {
      // Every node prunes on a timer. Nothing is older than the retention here; the entries past
      // maxEntries go, in two rounds.
      const { log, plans } = await explainingChangeLog(reader);
      const head = await log.head();
      const retention = { maxAgeMs: 3_600_000 };
      assert.equal(await log.prune({ ...retention, maxEntries: head - 3 }), 3);
      assert.equal(await log.prune({ ...retention, maxEntries: head - 10 }), 7);
      assert.equal(await log.floor(), 10);
      assert.deepEqual(
        (await log.read(0, 2)).map((r) => r.seq),
        [11, 12],
      );
      assert.equal(
        plans.length,
        5,
        'per round the newest entry older than the retention, the delete; then the read',
      );
      for (const plan of plans) assertReadsLogByIndex(plan);
    });
  });

  describe('two nodes on one database', () => {
    test('when the node reading the slot goes away, the other takes over: no change lost or repeated', async () => {
      const engine = await engineConfig('postgres');
      const first = await startTestServer({ enable_rate_limiting: false, ...engine });
      const second = await startTestServer({ enable_rate_limiting: false, ...engine });
      let firstOpen = true;
      try {
        await sql(second, 'CREATE TABLE ticks (n int PRIMARY KEY)');
        assert.deepEqual([reading(first), reading(second)], [true, false], 'the first node reads the slot');
        const watcher = await second.connectAuthed();
        const ack = await watcher.subscribed('t', { table: 'ticks' });
        const writer = await second.connectAuthed();
        const total = 120;
        for (let n = 1; n <= total; n++) {
          // The first node holds the slot (it started first); it goes away a third of the way in.
          if (n === total / 3) {
            await first.close();
            firstOpen = false;
          }
          const r = await writer.request({
            type: 'query',
            payload: { sql: 'INSERT INTO ticks VALUES (?)', params: [n] },
          });
          assert.equal(r.type, 'data');
        }
        const seen = await watcher.changes<Change>('t', total, 10_000);
        assert.ok(reading(second), 'the second node took the slot over');
        assert.deepEqual(
          seen.map((change) => change.row!.n),
          Array.from({ length: total }, (_, i) => i + 1),
        );
        seen.forEach((change, i) => assert.equal(change.sequence, (ack.payload.sequence as number) + 1 + i));
      } finally {
        if (firstOpen) await first.close();
        await second.close();
        await dropCaptureSlot(engine.database_url!);
      }
    });
  });
});
