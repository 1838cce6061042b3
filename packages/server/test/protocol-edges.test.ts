/**
 * WebSocket edges of issue 13: a burst of ping frames, the idle close of a client that stopped reading,
 * and requests cut short by the client going away (they are no server failure, and are not logged as
 * one).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { ENDLESS, sleep, sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { Logger } from '../src/core/logger.ts';

describe('a burst of ping frames', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
  });
  after(() => ts.close());

  test('200 pings sent at once are all answered with pongs, and the socket stays open', async () => {
    const c = await ts.connectAuthed();
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    // One synchronous burst: the frames reach the server together, well past ws's 60 pending pongs.
    for (let i = 0; i < 200; i++) c.ws.ping(`p${i}`);
    const deadline = Date.now() + 5000;
    while (pongs < 200 && Date.now() < deadline) await sleep(20);
    assert.equal(pongs, 200);
    assert.equal(c.isOpen, true, `closed: ${JSON.stringify(c.closeInfo)}`);
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  });
});

describe('the idle close of a client that stopped reading', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ websocket_ping_interval: 0.1, websocket_timeout: 0.5 });
    await sql(ts, 'CREATE TABLE wide (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await sql(ts, 'INSERT INTO wide (id, v) VALUES (1, ?)', [randomBytes(384 * 1024).toString('base64')]);
  });
  after(() => ts.close());

  test('a client that stops reading and sending finds the 1001 close when it reads again', async () => {
    const c = await ts.connectAuthed({ perMessageDeflate: false });
    c.ws.pause();
    // Past the idle timeout and the grace the server gives a closing socket.
    await sleep(3500);
    c.ws.resume();
    const closed = await c.closed(3000);
    assert.deepEqual(closed, { code: 1001, reason: 'idle timeout' });
  });

  test('a client that stops reading but keeps sending is closed all the same', async () => {
    const c = await ts.connectAuthed({ perMessageDeflate: false });
    c.record = false;
    c.ws.pause();
    // Answers it does not read (512 KB each) fill the network's buffers: the server stops reading its
    // messages, so they no longer count as a sign of life.
    const started = Date.now();
    for (let i = 0; Date.now() - started < 4000; i++) {
      c.send({ type: 'query', id: `q${i}`, payload: { sql: 'SELECT v FROM wide WHERE id = 1' } });
      await sleep(20);
    }
    // Gone from the server's side: its socket is closed and its session ended.
    const sessions = await ts.http('/api/v1/sessions');
    const open = (sessions.body as { data: { sessions: { id: string }[] } }).data.sessions;
    assert.equal(open.length, 0, JSON.stringify(open));
    assert.equal(ts.server.gateway.connectionCount, 0);
    c.ws.resume();
    // The close frame waits behind the data the client had not read: it reads that first, then finds
    // the connection closed (1001 if the close frame made it out in time, 1006 if not).
    const closed = await c.closed(10_000);
    assert.ok([1001, 1006].includes(closed.code), JSON.stringify(closed));
  });
});

/** A logger that keeps every line it is given. */
function recordingLogger(): {
  logger: Logger;
  lines: { level: string; message: string; fields?: unknown }[];
} {
  const lines: { level: string; message: string; fields?: unknown }[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void =>
      void lines.push({ level, message, fields });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('requests cut short by the client going away', () => {
  let ts: TestServer;
  const { logger, lines } = recordingLogger();
  /** A transaction that holds the one pooled connection until it is cancelled. */
  const HOLD = {
    transaction: true,
    queries: [{ sql: "INSERT INTO t (v) VALUES ('held')" }, { sql: ENDLESS }],
  };
  before(async () => {
    // One pooled connection: a second transaction waits for it, and is cut short while it waits.
    ts = await startTestServer({ engine_pool_size: 1, enable_rate_limiting: false }, { logger });
    await sql(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  });
  after(() => ts.close());

  /**
   * Runs `leave` (a request for `marker` whose client goes away while it waits) while another connection
   * holds the pool, then checks that the request never ran and what the server logged.
   */
  async function whileThePoolIsHeld(marker: string, leave: () => Promise<void>): Promise<void> {
    const busy = await ts.connectAuthed();
    busy.send({ type: 'batch', id: 'busy', payload: HOLD });
    await sleep(200);
    lines.length = 0;
    await leave();
    await sleep(500);
    busy.send({ type: 'cancel', payload: { id: 'busy' } });
    await busy.reply('busy', 5000);
    await sleep(300);
    assert.deepEqual(await sql(ts, 'SELECT count(*) FROM t WHERE v = ?', [marker]), {
      columns: ['count(*)'],
      rows: [[0]],
      rows_affected: 1,
    });
    assert.deepEqual(
      lines.filter((l) => l.level === 'error'),
      [],
    );
    assert.ok(
      lines.some((l) => l.level === 'debug' && l.message === 'request ended: the client went away'),
      JSON.stringify(lines),
    );
  }

  test('over WebSocket: the statement does not run, logged at debug level, not as an error', () =>
    whileThePoolIsHeld('w', async () => {
      const leaving = await ts.connectAuthed();
      leaving.send({
        type: 'batch',
        id: 'waiting',
        payload: { transaction: true, queries: [{ sql: "INSERT INTO t (v) VALUES ('w')" }] },
      });
      await sleep(300);
      leaving.terminate();
    }));

  for (const [path, marker, body] of [
    ['/api/v1/query', 'q', { sql: "INSERT INTO t (v) VALUES ('q'), ('q')" }],
    ['/api/v1/batch', 'b', { transaction: true, queries: [{ sql: "INSERT INTO t (v) VALUES ('b')" }] }],
  ] as const) {
    test(`over HTTP (${path}): the statement does not run, logged at debug level, not as an error`, () =>
      whileThePoolIsHeld(marker, async () => {
        const controller = new AbortController();
        const answer = fetch(`${ts.server.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ts.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: controller.signal,
        }).catch(() => undefined);
        await sleep(300);
        controller.abort();
        await answer;
      }));
  }
});

describe('requests a paused client left unread when its connection drops', () => {
  let ts: TestServer;
  const { logger, lines } = recordingLogger();
  before(async () => {
    // Room for every answer below: the server falls behind without closing the socket for it.
    ts = await startTestServer(
      { enable_rate_limiting: false, websocket_max_send_buffer: 64 * 1024 * 1024 },
      { logger },
    );
    await sql(ts, 'CREATE TABLE wide (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await sql(ts, 'INSERT INTO wide (id, v) VALUES (1, ?)', [randomBytes(384 * 1024).toString('base64')]);
    await sql(ts, 'CREATE TABLE marks (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
  });
  after(() => ts.close());

  test('are not run, and the answers cut short are no error: over graphql-ws, inserts behind unread answers leave no row', async () => {
    const ws = new WebSocket(`${ts.server.url.replace(/^http/, 'ws')}/graphql/ws`, 'graphql-transport-ws', {
      perMessageDeflate: false,
    });
    ws.on('error', () => {});
    const acknowledged = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve();
      }),
    );
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } }));
    await acknowledged;
    ws.pause();
    // Answers of 512 KB it does not read, more than the kernel's buffers take: the server falls behind
    // and stops reading this client.
    for (let i = 0; i < 40; i++) {
      ws.send(JSON.stringify({ id: `r${i}`, type: 'subscribe', payload: { query: '{ wide { id v } }' } }));
    }
    await sleep(1000);
    for (let n = 0; n < 1000; n++) {
      ws.send(
        JSON.stringify({
          id: `m${n}`,
          type: 'subscribe',
          payload: { query: `mutation { marksInsertOne(object: { n: ${n} }) { id } }` },
        }),
      );
    }
    await sleep(1000);
    // graphql-ws reports a failed write with console.error: the answers in flight when the client goes
    // away must not be reported as failures.
    const reported: unknown[][] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => void reported.push(args);
    try {
      lines.length = 0;
      ws.terminate();
      await sleep(1000);
    } finally {
      console.error = consoleError;
    }
    assert.deepEqual((await sql(ts, 'SELECT count(*) FROM marks')).rows, [[0]]);
    assert.deepEqual(reported, []);
    assert.deepEqual(
      lines.filter((l) => l.level === 'error' || l.level === 'warn'),
      [],
    );
    assert.ok(
      lines.some((l) => l.level === 'debug' && l.message === 'request ended: the client went away'),
      JSON.stringify(lines),
    );
  });
});
