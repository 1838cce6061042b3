/**
 * The change feed while no subscription exists on the node: it does not read the records writes make
 * (it moves its head past them), and a subscription that starts afterwards — resuming from a position
 * before those writes, or from now while writes go on — still gets exactly what its position promises.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, sleep, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

interface Change {
  sequence: number;
  op: string;
  row: Record<string, unknown> | null;
}

/** The changes of subscription `id` until one carries the row with `lastId`. */
async function changesThrough(client: TestClient, id: string, lastId: number): Promise<Change[]> {
  const out: Change[] = [];
  for (;;) {
    const m = await client.next((x) => x.id === id, 10_000);
    assert.equal(m.type, 'change', JSON.stringify(m));
    const change = m.payload as unknown as Change;
    out.push(change);
    if (change.row?.id === lastId) return out;
  }
}

/** Waits until `check` holds (the feed wakes a moment after a commit). */
async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not within 5 s: ${what}`);
    await sleep(10);
  }
}

function suite(engine: EngineName): void {
  const { autoId } = dialectOf(engine);
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false }, { engine });
  });
  after(async () => {
    await ts.close();
  });

  test('with no subscription the feed reads no record, yet keeps its head at the log’s', async () => {
    await sql(ts, `CREATE TABLE quiet (id ${autoId}, v TEXT)`);
    const log = ts.server.engine.changes;
    const read = log.read.bind(log);
    let reads = 0;
    log.read = (afterSeq, limit) => {
      reads++;
      return read(afterSeq, limit);
    };
    try {
      for (let i = 0; i < 20; i++) await sql(ts, 'INSERT INTO quiet (v) VALUES (?)', [`v${i}`]);
      const head = await log.head();
      await eventually(() => ts.server.feed.head === head, `the feed's head reaches ${head}`);
      assert.equal(reads, 0, 'the change log was read although nobody subscribes');

      // A subscription makes the feed read again: its changes arrive.
      const watcher = await ts.connectAuthed();
      await watcher.subscribed('q', { table: 'quiet' }, 5000);
      const { last_insert_id: id } = await sql(ts, "INSERT INTO quiet (v) VALUES ('seen')");
      const [change] = await changesThrough(watcher, 'q', id ?? 21);
      assert.equal(change!.row?.v, 'seen');
      assert.ok(reads > 0);
      watcher.terminate();
    } finally {
      log.read = read;
    }
  });

  test('a resume from before writes made with no subscriber gets exactly those writes, then live ones', async () => {
    await sql(ts, `CREATE TABLE resumed (id ${autoId}, v TEXT)`);
    const first = await ts.connectAuthed();
    const start = (await first.subscribed('r', { table: 'resumed' }, 5000)).payload.sequence as number;
    first.terminate();
    // The subscription is gone once its connection is: nobody needs the records now.
    await eventually(() => ts.server.subscriptions.count === 0, 'the subscription is dropped');
    for (let i = 1; i <= 30; i++) await sql(ts, 'INSERT INTO resumed (v) VALUES (?)', [`v${i}`]);
    const head = await ts.server.engine.changes.head();
    await eventually(() => ts.server.feed.head === head, `the feed's head reaches ${head}`);

    const second = await ts.connectAuthed();
    const ack = await second.subscribed('r', { table: 'resumed', since: start }, 5000);
    assert.equal(ack.payload.sequence, start);
    const fresh = await ts.connectAuthed();
    const now = (await fresh.subscribed('n', { table: 'resumed' }, 5000)).payload.sequence as number;
    assert.equal(now, head);
    await sql(ts, "INSERT INTO resumed (v) VALUES ('live')");

    const replayed = await changesThrough(second, 'r', 31);
    assert.deepEqual(
      replayed.map((c) => c.row?.v),
      [...Array.from({ length: 30 }, (_, i) => `v${i + 1}`), 'live'],
    );
    assert.equal(replayed[0]!.sequence, start + 1);
    for (let i = 1; i < replayed.length; i++)
      assert.equal(replayed[i]!.sequence, replayed[i - 1]!.sequence + 1);
    // The subscription from now gets the live write only.
    const live = await changesThrough(fresh, 'n', 31);
    assert.deepEqual(
      live.map((c) => [c.row?.v, c.sequence]),
      [['live', replayed.at(-1)!.sequence]],
    );
    second.terminate();
    fresh.terminate();
  });

  test('a subscription that starts while writes go on, with none before it, misses nothing', async () => {
    await sql(ts, `CREATE TABLE racing (id ${autoId}, v TEXT)`);
    await eventually(() => ts.server.subscriptions.count === 0, 'no subscription left');
    const writer = await ts.connectAuthed();
    const WRITES = 300;
    let written = 0;
    // One after another, each answered before the next, so that the subscription lands among them.
    const writing = (async () => {
      for (let i = 1; i <= WRITES; i++) {
        const answer = await writer.query('INSERT INTO racing (v) VALUES (?)', { params: [`v${i}`] });
        assert.equal(answer.error, undefined, JSON.stringify(answer.error));
        written = i;
      }
    })();
    await eventually(() => written >= 20, 'the writer is under way');
    const watcher = await ts.connectAuthed();
    const at = (await watcher.subscribed('w', { table: 'racing' }, 5000)).payload.sequence as number;
    await writing;
    assert.ok(written === WRITES);
    const received = await changesThrough(watcher, 'w', WRITES);
    // What the log holds after the subscription's position, read by a resume: the very same records.
    const reader = await ts.connectAuthed();
    await reader.subscribed('h', { table: 'racing', since: at }, 5000);
    const history = await changesThrough(reader, 'h', WRITES);
    assert.ok(history.length > 0 && history.length < WRITES, `${history.length} after the start`);
    assert.deepEqual(
      received.map((c) => [c.sequence, c.row?.id]),
      history.map((c) => [c.sequence, c.row?.id]),
    );
    writer.terminate();
    watcher.terminate();
    reader.terminate();
  });

  test('the first subscription after writes nobody watched: the feed reads on from its start', async () => {
    await sql(ts, `CREATE TABLE unread (id ${autoId}, v TEXT)`);
    await eventually(() => ts.server.subscriptions.count === 0, 'no subscription left');
    const log = ts.server.engine.changes;
    const read = log.read.bind(log);
    const readsFrom: number[] = [];
    // The feed looks at the log's head at most every few tens of milliseconds while nobody needs its
    // records: subscribed right after these writes, it would lag behind them.
    for (let i = 0; i < 20; i++) await sql(ts, 'INSERT INTO unread (v) VALUES (?)', [`v${i}`]);
    log.read = (afterSeq, limit) => {
      readsFrom.push(afterSeq);
      return read(afterSeq, limit);
    };
    try {
      const watcher = await ts.connectAuthed();
      const start = (await watcher.subscribed('u', { table: 'unread' }, 5000)).payload.sequence as number;
      const { last_insert_id: id } = await sql(ts, "INSERT INTO unread (v) VALUES ('seen')");
      const changes = await changesThrough(watcher, 'u', id ?? 21);
      assert.deepEqual(
        changes.map((c) => c.row?.v),
        ['seen'],
      );
      // Neither the feed nor the subscription's catch-up read anything from before the start.
      assert.ok(readsFrom.length > 0);
      assert.ok(
        readsFrom.every((from) => from >= start),
        `reads from ${readsFrom.join(', ')}, subscribed at ${start}`,
      );
      watcher.terminate();
    } finally {
      log.read = read;
    }
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
