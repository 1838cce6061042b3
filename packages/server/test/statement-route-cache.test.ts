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
import {
  INLINE_BUDGET_MS,
  INLINE_MAX_ROWS,
  INLINE_SLOW_RUNS,
  StatementRouter,
} from '../src/engine/sqlite/statement-router.ts';

/** The router's cache size (CACHE_LIMIT in statement-router.ts). */
const KEPT = 512;

/** Runs `body` with a router over a fresh database holding one table, kv (k, v). */
function withRouter(body: (router: StatementRouter) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-route-cache-'));
  const setup = openSync(join(dir, 'db.sqlite'));
  setup.exec('CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)');
  setup.close();
  const router = new StatementRouter(() => openSync(join(dir, 'db.sqlite')));
  try {
    body(router);
  } finally {
    router.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the route cache evicts the least recently used statement, repeated runs included', () =>
  withRouter((router) => {
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
  }));

test('slow or large inline runs move a statement off the loop; a fast run resets the count', () =>
  withRouter((router) => {
    const sql = 'SELECT v FROM kv WHERE k = ?';
    const slow = INLINE_BUDGET_MS + 1;
    let routed = router.route(sql);
    assert.equal(routed.route, 'inline');
    // Slow runs short of the limit, then a fast one: the count starts again.
    for (let i = 0; i < INLINE_SLOW_RUNS - 1; i++) router.observeInline(sql, routed, slow, 1);
    router.observeInline(sql, routed, 0.01, 1);
    for (let i = 0; i < INLINE_SLOW_RUNS - 1; i++) router.observeInline(sql, routed, slow, 1);
    assert.equal(router.route(sql).route, 'inline', 'moved off the loop although a fast run came between');
    router.observeInline(sql, routed, slow, 1);
    assert.equal(router.route(sql).route, 'pooled', 'still inline after consecutive slow runs');

    // A large result moves it at once.
    const other = 'SELECT k FROM kv WHERE k = ?';
    routed = router.route(other);
    router.observeInline(other, routed, 0.01, INLINE_MAX_ROWS + 1);
    assert.equal(router.route(other).route, 'pooled');

    // A run of a route the cache no longer holds (the schema changed) counts for nothing.
    const third = 'SELECT v, k FROM kv WHERE k = ?';
    const stale = router.route(third);
    router.invalidate();
    const fresh = router.route(third);
    assert.notEqual(fresh, stale);
    router.observeInline(third, stale, 0.01, INLINE_MAX_ROWS + 1);
    assert.equal(router.route(third), fresh, 'a stale route moved the current one');
  }));
