/**
 * SQL injection through parameters: values are bound, never spliced into the statement, so no value
 * changes what a statement does, whatever it contains — on the WebSocket and over HTTP alike.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { assertAlive, connectWith, createRole, createUser, runAs, snapshot, type Route } from './helpers.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  let token: string;
  let c: TestClient;
  let initial: Record<string, unknown[][]>;
  const ROUTES: Route[] = ['stream query', 'stream batch', 'http query', 'http batch'];

  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, `CREATE TABLE accounts (id ${dialect.autoId}, owner TEXT, balance INTEGER)`);
    await sql(ts, `CREATE TABLE secret (id ${dialect.autoId}, s TEXT)`);
    await sql(ts, "INSERT INTO accounts (owner, balance) VALUES ('alice', 100), ('bob', 50)");
    await sql(ts, "INSERT INTO secret (s) VALUES ('top')");
    await createRole(ts, 'teller', [
      { privilege: 'SELECT', table: 'accounts' },
      { privilege: 'INSERT', table: 'accounts' },
    ]);
    token = await createUser(ts, 'teller', ['teller']);
    c = await connectWith(ts, token);
    initial = await snapshot(ts, ['accounts', 'secret'], 'id');
  });

  after(() => ts.close());

  async function each(
    statement: string,
    params: unknown[],
    check: (route: Route, out: Awaited<ReturnType<typeof runAs>>) => void,
  ) {
    for (const route of ROUTES) check(route, await runAs(ts, route, token, c, statement, params));
  }

  test("a classic ' OR '1'='1 matches nothing", async () => {
    await each('SELECT owner FROM accounts WHERE owner = ?', ["x' OR '1'='1"], (route, out) => {
      assert.equal(out.code, 'ok', route);
      assert.deepEqual(out.rows, [], route);
    });
  });

  test('a stacked statement in a value runs nothing', async () => {
    await each(
      'SELECT owner FROM accounts WHERE owner = ?',
      ["alice'; DELETE FROM accounts; --"],
      (route, out) => {
        assert.deepEqual(out.rows, [], route);
      },
    );
    assert.deepEqual(await snapshot(ts, ['accounts', 'secret'], 'id'), initial);
  });

  test('a UNION in a value reaches no other table', async () => {
    await each(
      'SELECT owner FROM accounts WHERE owner = ?',
      ["' UNION SELECT s FROM secret --"],
      (route, out) => {
        assert.deepEqual(out.rows, [], route);
      },
    );
  });

  test('an internal table name in a value is just text', async () => {
    await each('SELECT owner FROM accounts WHERE owner = ?', ['_rustydb_users'], (route, out) => {
      assert.equal(out.code, 'ok', route);
      assert.deepEqual(out.rows, [], route);
    });
  });

  test('a value is stored verbatim and read back identical', async () => {
    const evil = "Robert'); DROP TABLE accounts; -- \\ \" ` [x] /* */ \u2028 ' OR 1=1";
    const out = await runAs(
      ts,
      'http query',
      token,
      c,
      'INSERT INTO accounts (owner, balance) VALUES (?, ?)',
      [evil, 1],
    );
    assert.equal(out.code, 'ok');
    const back = await runAs(ts, 'stream query', token, c, 'SELECT owner FROM accounts WHERE balance = 1');
    assert.deepEqual(back.rows, [[evil]]);
    await sql(ts, 'DELETE FROM accounts WHERE balance = 1');
    assert.deepEqual(await snapshot(ts, ['accounts', 'secret'], 'id'), initial);
  });

  test('a value in LIMIT cannot extend the statement', async () => {
    await each('SELECT owner FROM accounts LIMIT ?', ['1 UNION SELECT s FROM secret'], (route, out) => {
      assert.equal(out.code, 'QUERY_ERROR', route);
      assert.match(out.message!, /datatype mismatch|invalid input syntax/, route);
    });
  });

  test('a value where a table-valued function takes a name does not lift privileges', async () => {
    await each(
      engine === 'sqlite'
        ? 'SELECT count(*) FROM accounts WHERE owner IN (SELECT value FROM json_each(?))'
        : 'SELECT count(*) FROM accounts WHERE owner IN (SELECT json_array_elements_text(?::json))',
      ['["alice","bob"]'],
      (route, out) => {
        assert.deepEqual(out.rows, [[2]], route);
      },
    );
  });

  test('a blob parameter is bound as a blob', async () => {
    const blob = Buffer.from("'; DROP TABLE accounts; --").toString('base64');
    const probe =
      engine === 'sqlite'
        ? 'SELECT typeof(?), length(?)'
        : "SELECT 'blob', octet_length(?::bytea || ?::bytea) / 2";
    await each(probe, [{ $base64: blob }, { $base64: blob }], (route, out) => {
      assert.deepEqual(out.rows, [['blob', 26]], route);
    });
  });

  test('a parameter that is an object, an array or Infinity is INVALID_MESSAGE', async () => {
    for (const bad of [{ sql: 'x' }, ['nested'], { $base64: 1 }]) {
      const m = await c.request({ type: 'query', payload: { sql: 'SELECT ?', params: [bad] } });
      assert.equal(m.type, 'error');
      assert.equal(m.payload.code, 'INVALID_MESSAGE');
      const res = await ts.http('/api/v1/query', { body: { sql: 'SELECT ?', params: [bad] }, token });
      assert.equal(res.status, 400);
    }
    const id = c.newId();
    c.sendRaw(`{"type":"query","id":"${id}","payload":{"sql":"SELECT ?","params":[1e400]}}`);
    assert.equal((await c.reply(id)).payload.code, 'INVALID_MESSAGE');
  });

  test('a named placeholder cannot be fed from an object', async () => {
    const m = await c.request({ type: 'query', payload: { sql: 'SELECT :who', params: { who: 'x' } } });
    assert.equal(m.payload.code, 'INVALID_MESSAGE');
  });

  test('after the attempts the data is unchanged and the server serves', async () => {
    assert.deepEqual(await snapshot(ts, ['accounts', 'secret'], 'id'), initial);
    await assertAlive(ts);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
