/**
 * The durability setting reaches SQLite: the connections the server commits on run with the
 * `synchronous` level it promises (FULL for `full`, the default: each commit is flushed to the disk
 * before it is acknowledged; NORMAL for `normal`), read back from SQLite through the running engine,
 * and writes are acknowledged and kept under each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerConfig } from '../src/config/config.ts';
import type { SqliteEngine } from '../src/engine/sqlite/sqlite-engine.ts';
import { startTestServer } from './helpers/test-server.ts';

const cases: { overrides: Partial<ServerConfig>; level: string }[] = [
  { overrides: {}, level: 'FULL' },
  { overrides: { durability: 'full' }, level: 'FULL' },
  { overrides: { durability: 'normal' }, level: 'NORMAL' },
];

for (const { overrides, level } of cases) {
  test(`durability ${overrides.durability ?? '(default)'}: the server's connections run synchronous = ${level}`, async () => {
    const t = await startTestServer(overrides);
    try {
      const engine = t.server.engine as unknown as SqliteEngine;
      assert.equal(engine.name, 'sqlite');
      assert.deepEqual(await engine.synchronousInEffect(), { inline: level, pooled: level });
      // Both write paths commit under it: a keyed insert runs inline, a transactional batch pooled.
      const client = await t.connectAuthed();
      await client.query('CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT)');
      const inline = await client.query('INSERT INTO d (id, v) VALUES (?, ?)', { params: [1, 'a'] });
      assert.equal(inline.error, undefined, JSON.stringify(inline.error));
      assert.equal(inline.chunks[0]?.payload.rows_affected, 1);
      const batch = await client.request({
        type: 'batch',
        payload: {
          transaction: true,
          queries: [{ sql: 'INSERT INTO d (id, v) VALUES (?, ?)', params: [2, 'b'] }],
        },
      });
      assert.equal(batch.type, 'data', JSON.stringify(batch));
      const rows = await client.query('SELECT id, v FROM d ORDER BY id');
      assert.deepEqual(rows.rows, [
        [1, 'a'],
        [2, 'b'],
      ]);
      // Still so after the writes: nothing the server does on its connections changes the level.
      assert.deepEqual(await engine.synchronousInEffect(), { inline: level, pooled: level });
    } finally {
      await t.close();
    }
  });
}
