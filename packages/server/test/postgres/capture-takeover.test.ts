/**
 * A node that reads the capture slot and then stops answering (hung, or its machine or network gone:
 * its socket stays open and says nothing) loses the slot to another node within PostgreSQL's
 * walsender timeout, which the node sets on its replication connection (REPLICATION_SENDER_TIMEOUT,
 * 10 s; PostgreSQL's own default is 60 s): until then no node could capture a change. The hung node is
 * a real `rustydb serve` process stopped with SIGSTOP; once the other node reads the slot, its subscriber
 * gets the changes written there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slotReader, startNodes } from '../helpers/capture-slot.ts';
import { postgresCases } from '../helpers/engines.ts';
import { TestClient } from '../helpers/ws-client.ts';

/** The walsender timeout (10 s), one retry of the other node (1 s), and room for a loaded machine. */
const TAKEOVER_WITHIN_MS = 25_000;

postgresCases('PostgreSQL cases', () => {
  test('a node that stops answering loses the capture slot to another, and changes flow again', async () => {
    const cluster = await startNodes(2);
    const { nodes, database } = cluster;
    let stopped: number | undefined;
    try {
      await nodes[0]!.server.sql('CREATE TABLE notes (id int PRIMARY KEY, body text)');
      const reader = await slotReader(nodes, database);
      const other = nodes[1 - reader]!;

      stopped = nodes[reader]!.server.pid;
      process.kill(stopped, 'SIGSTOP');
      nodes[reader]!.alive = false;
      const hungAt = Date.now();

      assert.equal(await slotReader(nodes, database, TAKEOVER_WITHIN_MS), 1 - reader);
      const tookOverAfter = Date.now() - hungAt;

      const streamUrl = `${other.server.wsUrl}/api/v1/stream?token=${other.server.token}`;
      const client = await TestClient.connect(streamUrl, { perMessageDeflate: false });
      try {
        await client.next((m) => m.type === 'auth_success');
        await client.subscribed('s', { table: 'notes' });
        await other.server.sql('INSERT INTO notes VALUES (2, ?)', ['written after the takeover']);
        const change = await client.next((m) => m.type === 'change' && m.id === 's', 10_000);
        assert.deepEqual((change.payload as { row: unknown }).row, {
          id: 2,
          body: 'written after the takeover',
        });
      } finally {
        client.close();
      }
      assert.ok(tookOverAfter < TAKEOVER_WITHIN_MS, `took over after ${tookOverAfter} ms`);
    } finally {
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
      await cluster.stop();
    }
  });
});
