/**
 * A client that stops reading what its subscriptions push must not grow the server: table subscriptions,
 * live queries and document change streams end with SLOW_CONSUMER at subscription_max_buffer, and the
 * client finds that once it reads again. See helpers/paused-clients.ts for how each surface is run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  authed,
  checkSurface,
  DEFAULT_SUBSCRIPTION_BUFFER,
  insertWideDocuments,
  pausedSubscriber,
  PAUSED_MS,
  postDocuments,
  WARM_DOCUMENTS,
  warmSubscription,
  WIDE_CHANGE,
  wideValue,
} from './helpers/paused-clients.ts';
import { sleep } from './helpers/test-server.ts';

describe('paused subscribers: the server stays within +50 MB', () => {
  test('a table subscription while a 512 KB row changes 3 times a second', { timeout: 90_000 }, () =>
    checkSurface(
      pausedSubscriber({ table: 'wide' }),
      DEFAULT_SUBSCRIPTION_BUFFER + WIDE_CHANGE,
      warmSubscription({ table: 'wide' }),
    ),
  );

  test('a live query while the 512 KB row it reads changes 3 times a second', { timeout: 90_000 }, () =>
    checkSurface(
      pausedSubscriber({ query: 'SELECT id, v FROM wide WHERE id = 1' }),
      DEFAULT_SUBSCRIPTION_BUFFER + WIDE_CHANGE,
      warmSubscription({ query: 'SELECT id, v FROM wide WHERE id = 2' }),
    ),
  );

  test(
    'a document change stream while 512 KB documents are inserted 4 times a second',
    { timeout: 90_000 },
    () =>
      checkSurface(
        async (server) => {
          // With the token in the URL the watch endpoint starts the collection's change stream by itself.
          const watcher = await authed(server, '/api/v1/documents/collections/notes/watch');
          watcher.record = false;
          await watcher.next((m) => m.type === 'subscribed' && m.id === 'notes', 10_000);
          watcher.ws.pause();
          const started = Date.now();
          for (let i = 0; i < 1000 && Date.now() - started < PAUSED_MS; i++) {
            await Promise.all([
              postDocuments(server, '/notes/insert', { document: { i, text: wideValue() } }),
              sleep(250),
            ]);
          }
          watcher.ws.resume();
          const ended = await watcher.next((m) => m.type === 'error', 20_000);
          assert.equal(ended.payload.code, 'SLOW_CONSUMER');
          return [watcher];
        },
        DEFAULT_SUBSCRIPTION_BUFFER + WIDE_CHANGE,
        (server) => insertWideDocuments(server, WARM_DOCUMENTS, true),
      ),
  );
});
