/**
 * urql (@urql/core), a client nobody here wrote: queries and mutations over HTTP (fetchExchange with a
 * bearer token), subscriptions over graphql-ws (subscriptionExchange forwarding to createClient).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, fetchExchange, subscriptionExchange, type OperationResult } from '@urql/core';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { disposeClients, wsClient } from './helpers.ts';

let ts: TestServer;
let urql: Client;

before(async () => {
  ts = await startTestServer();
  await sql(
    ts,
    'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT 0)',
  );
  const ws = wsClient(ts, ts.token);
  urql = new Client({
    url: `${ts.server.url}/graphql`,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: { authorization: `Bearer ${ts.token}` } }),
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
});

after(async () => {
  await disposeClients();
  await ts.close();
});

test('urql queries and mutates over HTTP', async () => {
  const added = await urql
    .mutation('mutation($t: String!) { todosInsertOne(object: {title: $t}) { id title done } }', {
      t: 'write tests',
    })
    .toPromise();
  assert.equal(added.error, undefined, String(added.error));
  assert.deepEqual(added.data?.todosInsertOne, { id: 1, title: 'write tests', done: false });
  const listed = await urql.query('{ todos(where: {done: {eq: false}}) { title } }', {}).toPromise();
  assert.deepEqual(listed.data, { todos: [{ title: 'write tests' }] });
});

test('urql reports GraphQL errors with their codes', async () => {
  const result = await urql.query('{ executeSql(sql: "SELECT * FROM nowhere") { rows } }', {}).toPromise();
  assert.equal(result.error?.graphQLErrors[0]?.extensions.code, 'TABLE_NOT_FOUND');
});

test('urql subscribes to table changes over graphql-ws', async () => {
  const received: OperationResult[] = [];
  const { unsubscribe } = urql
    .subscription('subscription { rowUpdated(table: todos) { changeType row } }', {})
    .subscribe((result) => received.push(result));
  try {
    await sleep(200);
    await urql
      .mutation('mutation { todosUpdateMany(where: {}, set: {done: true}) { affectedRows } }', {})
      .toPromise();
    for (let i = 0; i < 50 && received.length === 0; i++) await sleep(50);
    assert.equal(
      received.length,
      1,
      JSON.stringify(
        received.map((r) => ({ data: r.data, error: String(r.error), stale: r.stale, hasNext: r.hasNext })),
      ),
    );
    const change = received[0]!.data?.rowUpdated as { changeType: string; row: { done: number } };
    assert.equal(change.changeType, 'UPDATE');
    assert.equal(change.row.done, 1, 'rows of change events are raw JSON');
  } finally {
    unsubscribe();
  }
});

test('urql subscribes to metrics over graphql-ws', async () => {
  const received: OperationResult[] = [];
  const { unsubscribe } = urql
    .subscription(
      'subscription { metricUpdated(intervalMs: 100) { cpu memory diskIO activeConnections queryRate timestamp } }',
      {},
    )
    .subscribe((result) => received.push(result));
  try {
    for (let i = 0; i < 60 && received.length < 2; i++) await sleep(50);
    assert.ok(received.length >= 2, `got ${received.length} metric updates`);
    const update = received[1]!.data?.metricUpdated as Record<string, number | string>;
    assert.ok((update.memory as number) > 10_000_000, 'RSS in bytes');
    assert.ok((update.activeConnections as number) >= 1, 'the graphql-ws socket itself');
    assert.ok(!Number.isNaN(Date.parse(update.timestamp as string)));
  } finally {
    unsubscribe();
  }
});
