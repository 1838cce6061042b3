/**
 * The router keeps the routes of the last 512 statements, least recently used evicted first. A route
 * already at the newest end is not moved again on every run (see StatementRouter.route): the order it
 * evicts in must be the same as if it were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSync } from '../src/engine/sqlite/driver.ts';
import { StatementRouter } from '../src/engine/sqlite/statement-router.ts';

/** The router's cache size (CACHE_LIMIT in statement-router.ts). */
const KEPT = 512;

test('the route cache evicts the least recently used statement, repeated runs included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-route-cache-'));
  const setup = openSync(join(dir, 'db.sqlite'));
  setup.exec('CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)');
  setup.close();
  const router = new StatementRouter(() => openSync(join(dir, 'db.sqlite')));
  try {
    const nth = (i: number): string => `SELECT v FROM kv WHERE k = ${i}`;
    const hot = 'SELECT v FROM kv WHERE k = ?';
    const first = router.route(hot);
    // Run twice in a row: the second run finds it newest already.
    assert.equal(router.route(hot), first);
    const routes: unknown[] = [];
    for (let i = 0; i < KEPT - 1; i++) routes.push(router.route(nth(i)));
    // Used again after the others: now the newest, so the next new statement evicts nth(0) instead.
    assert.equal(router.route(hot), first);
    assert.equal(router.route(hot), first);
    router.route(nth(KEPT));
    assert.equal(router.route(hot), first, 'the statement used last was evicted');
    assert.equal(router.route(nth(1)), routes[1], 'a statement newer than the evicted one is gone');
    assert.notEqual(router.route(nth(0)), routes[0], 'the least recently used statement is still cached');
  } finally {
    router.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
