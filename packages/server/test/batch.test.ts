/** `batch`: per-query results; without a transaction it runs past failures, with one it is all or nothing. */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { ServerMsg, TestClient } from './helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from './helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  let c: TestClient;
  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, `CREATE TABLE acct (id ${dialect.autoId}, name TEXT UNIQUE NOT NULL, balance INTEGER)`);
    c = await ts.connectAuthed();
  });
  beforeEach(async () => {
    await sql(ts, 'DELETE FROM acct');
  });
  after(() => ts.close());

  async function batch(
    queries: { sql: string; params?: unknown[] }[],
    transaction?: boolean,
  ): Promise<ServerMsg> {
    const id = c.newId('b');
    c.send({
      type: 'batch',
      id,
      payload: transaction === undefined ? { queries } : { queries, transaction },
    });
    const reply = await c.reply(id, 5000);
    // Exactly one message answers a batch.
    c.send({ type: 'ping', id: `${id}-fence` });
    await c.reply(`${id}-fence`);
    assert.equal(
      c.pending().filter((m) => m.id === id).length,
      0,
      'more than one message answered the batch',
    );
    return reply;
  }

  async function names(): Promise<string[]> {
    return (await sql(ts, 'SELECT name FROM acct ORDER BY id')).rows.map((r) => r[0] as string);
  }

  test('a batch answers one data message with a result per query, in order', async () => {
    const m = await batch([
      { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?)', params: ['alice', 10] },
      { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?), (?, ?)', params: ['bob', 20, 'carol', 30] },
      { sql: 'SELECT name, balance FROM acct ORDER BY id' },
      { sql: 'SELECT ? AS echo', params: ['hi'] },
    ]);
    assert.equal(m.type, 'data');
    assert.equal(m.payload.status, 'success');
    assert.deepEqual(m.payload.results, [
      { status: 'success', columns: [], rows: [], rows_affected: 1, ...dialect.lastInsertId(1) },
      { status: 'success', columns: [], rows: [], rows_affected: 2, ...dialect.lastInsertId(3) },
      {
        status: 'success',
        columns: ['name', 'balance'],
        rows: [
          ['alice', 10],
          ['bob', 20],
          ['carol', 30],
        ],
        rows_affected: 3,
      },
      { status: 'success', columns: ['echo'], rows: [['hi']], rows_affected: 1 },
    ]);
  });

  test('without a transaction a failing statement is reported and the rest still run', async () => {
    const m = await batch([
      { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['a'] },
      { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['a'] },
      { sql: 'SELECT * FROM no_such_table' },
      { sql: 'SELEC 1' },
      { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['b'] },
    ]);
    assert.equal(m.type, 'data');
    const results = m.payload.results!;
    assert.equal(results.length, 5);
    assert.deepEqual(
      results.map((r) => [r.status, r.code]),
      [
        ['success', undefined],
        ['error', 'QUERY_ERROR'],
        ['error', 'TABLE_NOT_FOUND'],
        ['error', 'QUERY_ERROR'],
        ['success', undefined],
      ],
    );
    for (const failure of [results[1]!, results[2]!, results[3]!]) {
      assert.deepEqual(Object.keys(failure).sort(), ['code', 'message', 'status']);
      assert.equal(typeof failure.message, 'string');
    }
    assert.deepEqual(await names(), ['a', 'b']);
  });

  test('transaction:true with a failing statement applies nothing and answers one error', async () => {
    await sql(ts, "INSERT INTO acct (name, balance) VALUES ('existing', 1)");
    const m = await batch(
      [
        { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?)', params: ['x', 1] },
        { sql: 'UPDATE acct SET balance = balance + 100' },
        { sql: 'DELETE FROM acct WHERE name = ?', params: ['existing'] },
        { sql: 'SELECT * FROM no_such_table' },
        { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?)', params: ['y', 1] },
      ],
      true,
    );
    assert.equal(m.type, 'error');
    assert.equal(m.payload.status, 'error');
    assert.equal(m.payload.code, 'TABLE_NOT_FOUND');
    assert.equal(m.payload.details?.index, 3);
    assert.deepEqual((await sql(ts, 'SELECT name, balance FROM acct ORDER BY id')).rows, [['existing', 1]]);
  });

  test('transaction:true with a constraint failure part-way applies nothing', async () => {
    const m = await batch(
      [
        { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['p'] },
        { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['q'] },
        { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['p'] },
      ],
      true,
    );
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'QUERY_ERROR');
    assert.equal(m.payload.details?.index, 2);
    assert.deepEqual(await names(), []);
  });

  test('transaction:true with a refused statement runs nothing at all', async () => {
    const m = await batch(
      [
        { sql: 'INSERT INTO acct (name) VALUES (?)', params: ['r'] },
        { sql: `SELECT * FROM ${dialect.usersTable}` },
      ],
      true,
    );
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'PERMISSION_DENIED');
    assert.deepEqual(await names(), []);
  });

  test('transaction:true that succeeds applies everything and sees its own writes', async () => {
    const m = await batch(
      [
        { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?)', params: ['s', 5] },
        { sql: 'INSERT INTO acct (name, balance) VALUES (?, ?)', params: ['t', 7] },
        { sql: 'UPDATE acct SET balance = balance * 2 WHERE name = ?', params: ['t'] },
        { sql: 'SELECT sum(balance) AS total FROM acct' },
      ],
      true,
    );
    assert.equal(m.type, 'data');
    assert.deepEqual(
      m.payload.results!.map((r) => [r.status, r.rows_affected]),
      [
        ['success', 1],
        ['success', 1],
        ['success', 1],
        ['success', 1],
      ],
    );
    assert.deepEqual(m.payload.results![3]!.rows, [[19]]);
    assert.deepEqual((await sql(ts, 'SELECT name, balance FROM acct ORDER BY id')).rows, [
      ['s', 5],
      ['t', 14],
    ]);
  });

  test('a failed transaction leaves the engine usable for the next one', async () => {
    await batch([{ sql: 'INSERT INTO acct (name) VALUES (?)', params: ['u'] }, { sql: 'SELEC' }], true);
    const ok = await batch([{ sql: 'INSERT INTO acct (name) VALUES (?)', params: ['v'] }], true);
    assert.equal(ok.type, 'data');
    assert.deepEqual(await names(), ['v']);
  });

  test('an invalid batch (no queries, or a query without sql) is INVALID_MESSAGE', async () => {
    c.send({ type: 'batch', id: 'bad-batch-1', payload: { queries: [] } });
    const empty = await c.reply('bad-batch-1');
    assert.equal(empty.type, 'error');
    assert.equal(empty.payload.code, 'INVALID_MESSAGE');
    c.send({ type: 'batch', id: 'bad-batch-2', payload: { queries: [{ params: [] }] } });
    const noSql = await c.reply('bad-batch-2');
    assert.equal(noSql.payload.code, 'INVALID_MESSAGE');
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
