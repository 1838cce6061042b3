/**
 * GraphQL through the client against the real server: a query over HTTP with the client's token,
 * errors in `errors`, and a subscription over /graphql/ws (graphql-ws) that delivers a row inserted
 * by another statement, then completes on the server when the loop is left. When the socket is lost,
 * subscriptions are made again on a new one (a `$since` variable resumes after the last sequence
 * delivered: nothing missed, nothing twice), and close() ends their loops normally.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBClient } from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  TcpRelay,
  collect,
  eventually,
  fixture,
  openClient,
  startTestServer,
  within,
  type TestServer,
} from './helpers.ts';

interface Change {
  tableChanges: { changeType: string; row: { n: number } | null; sequence: number };
}

describe('client.graphql and client.graphqlSubscribe', () => {
  let ts: TestServer;
  let client: RustyDBClient;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
    client = new RustyDBClient({ url: ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    await client.query('CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT)');
    await client.query("INSERT INTO gadgets (name) VALUES ('lamp')");
  });
  after(async () => {
    await client?.close();
    await ts?.close();
  });

  test('a query over HTTP, and a GraphQL error in errors', async () => {
    const result = await client.graphql<{ gadgets: { name: string }[] }>('{ gadgets { name } }');
    assert.deepEqual(result.data, { gadgets: [{ name: 'lamp' }] });
    const bad = await client.graphql('{ nope }');
    assert.ok(bad.errors && bad.errors.length > 0 && /nope/.test(bad.errors[0]!.message));
  });

  test('a subscription over /graphql/ws delivers a change, and leaving the loop completes it', async () => {
    // Resume from the log's head before the insert, so the event cannot be missed however long the
    // subscription takes to start.
    const listed = await ts.http('/api/v1/subscriptions');
    const head = (listed.body as { data: { head: number } }).data.head;
    await client.query("INSERT INTO gadgets (name) VALUES ('kettle')");
    const active = async (): Promise<number> => {
      const res = await ts.http('/api/v1/metrics');
      return (res.body as { data: { metrics: { subscriptions_active: number } } }).data.metrics
        .subscriptions_active;
    };
    const events = client.graphqlSubscribe<{ tableChanges: { changeType: string; row: { name: string } } }>(
      'subscription ($since: BigInt) { tableChanges(table: gadgets, since: $since) { changeType row } }',
      { since: head },
    );
    const { value } = await events.next();
    assert.equal(value?.data?.tableChanges.changeType, 'INSERT', JSON.stringify(value));
    assert.equal(value?.data?.tableChanges.row.name, 'kettle');
    await eventually(async () => (await active()) === 1, 'one subscription on the server');
    await events.return!();
    await eventually(async () => (await active()) === 0, 'the subscription completed on the server');
  });

  test('after the socket is lost, subscriptions resume: a $since subscription gets every change once, in order', async () => {
    const relay = await TcpRelay.start(ts.server.port);
    const viaRelay = await openClient(relay.url);
    try {
      await fixture(ts, 'CREATE TABLE counted (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      const changes = collect(
        viaRelay.graphqlSubscribe<Change>(
          'subscription ($since: BigInt) { tableChanges(table: counted, since: $since) { changeType row sequence } }',
        ),
      );
      const live = collect(
        viaRelay.graphqlSubscribe<{ countedLive: { rows: { n: number }[] } }>(
          'subscription { countedLive { rows { n } } }',
        ),
      );
      await eventually(() => live.events.length >= 1, 'the first live result');
      await fixture(ts, 'INSERT INTO counted (n) VALUES (1)');
      await eventually(() => changes.events.length === 1, 'the first change');

      relay.refuse = true;
      relay.dropAll();
      await fixture(ts, 'INSERT INTO counted (n) VALUES (2), (3)');
      await eventually(() => relay.attempts.length >= 4, 'reconnect attempts while the server is away');
      relay.refuse = false;
      await eventually(() => changes.events.length >= 3, 'the changes made while away', 10_000);
      await fixture(ts, 'INSERT INTO counted (n) VALUES (4)');
      await eventually(() => changes.events.length >= 4, 'a change after the resume');
      await eventually(
        () => live.events.at(-1)?.data?.countedLive.rows.length === 4,
        'the live result after the reconnect',
      );

      const delivered = changes.events.map((e) => e.data?.tableChanges);
      assert.deepEqual(
        delivered.map((c) => c?.row?.n),
        [1, 2, 3, 4],
        'every change exactly once, in order',
      );
      assert.ok(delivered.every((c) => c?.changeType === 'INSERT'));

      await viaRelay.close();
      const outcomes = await within(
        Promise.all([changes.done, live.done]),
        5000,
        'the loops to end after close()',
      );
      assert.deepEqual(outcomes, ['finished', 'finished']);
    } finally {
      await viaRelay.close();
      await relay.close();
    }
  });
});
