/**
 * A client that gives up on an HTTP request must not leave its statements running: otherwise one
 * client can hold the write lock (or a core) for statement_timeout with requests it abandons at once.
 * Each route that runs SQL over HTTP — /api/v1/query, /api/v1/batch (plain and transactional),
 * GraphQL's executeSql — and GraphQL over graphql-ws are sent a statement that holds the write lock until
 * it is interrupted; the client disconnects, and another writer must get through well before the timeout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { rawSocket } from '../graphql/helpers.ts';

let ts: TestServer;
before(async () => {
  // A long statement timeout: only the disconnect can stop the statements in time.
  ts = await startTestServer({ statement_timeout: 60 });
  await sql(ts, 'CREATE TABLE counters (id INTEGER PRIMARY KEY, v INTEGER)');
  await sql(ts, 'CREATE TABLE marks (id INTEGER PRIMARY KEY, note TEXT)');
  await sql(ts, 'INSERT INTO counters (id, v) VALUES (1, 0)');
});
after(() => ts.close());

/** An UPDATE that holds the write lock while it counts forever. */
const ENDLESS_WRITE =
  'UPDATE counters SET v = (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c) WHERE id = 1';

/** Sends a request and drops the connection after `afterMs`, without waiting for an answer. */
function sendAndAbandon(path: string, body: unknown, afterMs = 400): Promise<void> {
  return new Promise((resolve) => {
    const text = JSON.stringify(body);
    const req = httpRequest(`${ts.server.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ts.token}`,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(text)),
      },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    req.end(text);
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}

/** Another client's write, which needs the write lock: how long it took, or a failure. */
async function otherWriter(note: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const res = await ts.http('/api/v1/query', {
      body: { sql: 'INSERT INTO marks (note) VALUES (?)', params: [note] },
    });
    if (res.status === 200) return Date.now() - started;
    // Busy while the abandoned statement still holds the lock: try again, within the bound below.
    if (Date.now() - started > 8000) assert.fail(`the write never got through: ${JSON.stringify(res.body)}`);
    await sleep(100);
  }
}

const ROUTES: [string, string, unknown][] = [
  ['/api/v1/query', 'POST /api/v1/query', { sql: ENDLESS_WRITE }],
  ['/api/v1/batch', 'POST /api/v1/batch', { queries: [{ sql: ENDLESS_WRITE }] }],
  [
    '/api/v1/batch',
    'POST /api/v1/batch (transaction)',
    {
      transaction: true,
      queries: [{ sql: "INSERT INTO marks (note) VALUES ('abandoned')" }, { sql: ENDLESS_WRITE }],
    },
  ],
  [
    '/graphql',
    'POST /graphql executeSql',
    {
      query: 'mutation ($sql: String!) { executeSql(sql: $sql) { rowsAffected } }',
      variables: { sql: ENDLESS_WRITE },
    },
  ],
];

for (const [path, name, body] of ROUTES) {
  test(`${name}: a client that disconnects stops its statements`, async () => {
    await sendAndAbandon(path, body);
    const waited = await otherWriter(name);
    // statement_timeout is 60 s: only an interrupt on disconnect frees the lock this soon.
    assert.ok(waited < 3000, `the other writer waited ${waited} ms`);
    // Nothing of the abandoned transaction was applied.
    assert.deepEqual((await sql(ts, "SELECT count(*) FROM marks WHERE note = 'abandoned'")).rows, [[0]]);
    assert.deepEqual((await sql(ts, 'SELECT v FROM counters')).rows, [[0]]);
  });
}

test('graphql-ws: a connection that goes away stops its operations', async () => {
  const socket = await rawSocket(ts);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } });
  await socket.next(() => true, 3000);
  socket.send({
    type: 'subscribe',
    id: 'endless',
    payload: {
      query: 'mutation ($sql: String!) { executeSql(sql: $sql) { rowsAffected } }',
      variables: { sql: ENDLESS_WRITE },
    },
  });
  await sleep(400);
  socket.terminate();
  const waited = await otherWriter('graphql-ws');
  assert.ok(waited < 3000, `the other writer waited ${waited} ms`);
});
