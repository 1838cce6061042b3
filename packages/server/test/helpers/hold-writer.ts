/**
 * Holds the server's write gate with a transactional batch that runs until `release` cancels it:
 * writes sent meanwhile wait for their turn (with durability full, in a commit group), while reads of
 * the last committed state still run. `insertSql` is the batch's first statement, a write to a table
 * of the test's own, so that the batch takes the write lock.
 */
import assert from 'node:assert/strict';
import { ENDLESS, sleep, type TestServer } from './test-server.ts';

export async function holdWriter(ts: TestServer, insertSql: string): Promise<{ release(): Promise<void> }> {
  const holder = await ts.connectAuthed();
  holder.send({
    type: 'batch',
    id: 'long',
    payload: { transaction: true, queries: [{ sql: insertSql }, { sql: ENDLESS }] },
  });
  await sleep(300);
  return {
    async release() {
      holder.send({ type: 'cancel', payload: { id: 'long' } });
      assert.equal((await holder.reply('long', 5000)).payload.code, 'QUERY_CANCELLED');
    },
  };
}
