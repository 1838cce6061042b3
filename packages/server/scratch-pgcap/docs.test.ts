import { test } from 'node:test';
import { startTestServer } from '../test/helpers/test-server.ts';

test('docs on pg', async () => {
  const ts = await startTestServer({ enable_rate_limiting: false }, { engine: 'postgres' });
  try {
    for (const [path, body] of [
      ['/api/v1/documents/collections', { name: 'people' }],
      ['/api/v1/documents/collections/people/insert', { document: { name: 'Ada', age: 3 } }],
      ['/api/v1/documents/collections/people/find', { filter: { age: { $gt: 1 } } }],
    ] as const) {
      const r = await ts.http(path, { body });
      console.log(path, r.status, JSON.stringify(r.body).slice(0, 300));
    }
  } finally {
    await ts.close();
  }
});
