/**
 * Events between the nodes sharing a PostgreSQL database (node-events.ts), as the queries that carry
 * them run: every node reads the events published since its last read after each NOTIFY, and that read
 * goes by index even before autovacuum has ever analyzed rustydb.node_events; so does a publisher's
 * deletion of the events older than ten minutes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../helpers/test-server.ts';
import { postgresCases } from '../helpers/engines.ts';
import {
  startServerOnPostgres,
  type ServerOnPostgres,
  type SuperuserClient,
} from '../helpers/server-on-postgres.ts';
import {
  assertNeverAnalyzed,
  assertReadsByIndex,
  explainAnalyze,
  type QueryPlan,
} from '../helpers/query-plans.ts';
import type { NodeEvent } from '../../src/engine/engine.ts';
import { PgNodeEvents } from '../../src/engine/postgres/node-events.ts';

postgresCases('PostgreSQL cases', () => {
  describe('reading the events of other nodes', () => {
    // A database of its own, whose event table holds TABLE_SIZE events of the size of a privilege
    // change's. At that size (about 450 to 900 such events), with no statistics, the planner took
    // scanning and sorting the whole table for the cheaper plan of an open-ended `id > $1`.
    const TABLE_SIZE = 600;
    let server: ServerOnPostgres;
    let client: SuperuserClient;
    const rows = (text: string, values?: unknown[]): Promise<unknown[][]> => server.rows(text, values);

    before(async () => {
      server = await startServerOnPostgres();
      ({ client } = server);
      // The plans that matter are those made without statistics: autovacuum must not analyze the table
      // while the test runs (on a server of many test databases it comes by every few seconds).
      await rows('ALTER TABLE rustydb.node_events SET (autovacuum_enabled = false)');
      await rows(
        `SELECT rustydb.publish_node_event(json_build_object('node', gen_random_uuid(),
                                           'event', json_build_object('kind', 'privileges'))::text)
           FROM generate_series(1, $1::int)`,
        [TABLE_SIZE],
      );
    });
    after(() => server.close());

    test('the events published since the last read are read by index in a table never analyzed, not by scanning and sorting it', async () => {
      // Every node reads after each NOTIFY of an event (a logout, a changed grant, a list of sessions).
      await assertNeverAnalyzed(client, 'node_events');
      const plans: QueryPlan[] = [];
      const reader = new PgNodeEvents(
        async (text, values = []) => {
          if (text.includes('FROM rustydb.node_events')) {
            plans.push(await explainAnalyze(client, text, values, 'node_events'));
          }
          return rows(text, values);
        },
        (err) => assert.fail(err as Error),
      );
      const publisher = new PgNodeEvents(rows, (err) => assert.fail(err as Error));
      await reader.start();
      const received: NodeEvent[] = [];
      reader.onEvent((event) => received.push(event));
      const sent = [1, 2, 3].map((n) => ({ kind: 'test', n }));
      for (const event of sent) await publisher.publish(event);
      plans.length = 0;
      reader.read();
      for (let waited = 0; received.length < sent.length && waited < 5000; waited += 10) await sleep(10);
      assert.deepEqual(received, sent);
      assert.equal(plans.length, 1, 'one read of the new events');
      assertReadsByIndex(plans[0]!, 'node_events', 10);
    });

    test('a publisher deletes the events older than ten minutes by index, not by reading every event', async () => {
      // The oldest EXPIRED events are from eleven minutes ago (a publisher prunes once a minute, so about
      // a tenth of the table has expired each time).
      const EXPIRED = 60;
      await rows(
        `UPDATE rustydb.node_events SET at = now() - interval '11 minutes'
          WHERE id <= (SELECT min(id) FROM rustydb.node_events) + $1::int - 1`,
        [EXPIRED],
      );
      const count = async (): Promise<[number, number]> => {
        const [[expired, kept]] = (await rows(
          `SELECT count(*) FILTER (WHERE at < now() - interval '10 minutes')::int,
                  count(*) FILTER (WHERE at >= now() - interval '10 minutes')::int FROM rustydb.node_events`,
        )) as [[number, number]];
        return [expired, kept];
      };
      const [expired, kept] = await count();
      assert.equal(expired, EXPIRED);
      await assertNeverAnalyzed(client, 'node_events');
      const plans: QueryPlan[] = [];
      const publisher = new PgNodeEvents(
        async (text, values = []) => {
          if (text.startsWith('DELETE'))
            plans.push(await explainAnalyze(client, text, values, 'node_events'));
          return rows(text, values);
        },
        (err) => assert.fail(err as Error),
      );
      await publisher.publish({ kind: 'test', n: 4 });
      assert.deepEqual(await count(), [0, kept + 1], 'every expired event deleted, every other kept');
      assert.equal(plans.length, 1, 'one prune');
      // The oldest event's id, the expired events and the first one kept, twice (found, then deleted).
      assertReadsByIndex(plans[0]!, 'node_events', 1 + 2 * (EXPIRED + 1));
    });
  });
});
