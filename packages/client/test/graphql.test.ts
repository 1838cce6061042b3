/**
 * GraphQL through the client against the real server: a query over HTTP with the client's token,
 * errors in `errors`, and a subscription over /graphql/ws (graphql-ws) that delivers a row inserted
 * by another statement, then completes on the server when the loop is left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBClient } from '@rustydb/client';
import { ADMIN_PASSWORD, eventually, startTestServer, type TestServer } from './helpers.ts';

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
});
