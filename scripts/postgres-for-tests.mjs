// A throwaway PostgreSQL server for the tests, the benchmarks and `npm run cluster` (scripts/cluster.mjs):
// initdb in a temporary directory, listening on a free port on 127.0.0.1 only, with the settings RustyDB's
// PostgreSQL engine needs.
// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The bin directory of PostgreSQL 15 or later: $RUSTYDB_PG_BIN, or Debian's /usr/lib/postgresql/N/bin. */
export function findPostgresBin() {
  if (process.env.RUSTYDB_PG_BIN) return process.env.RUSTYDB_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .map(Number)
    .filter((v) => v >= 15 && existsSync(join(root, String(v), 'bin', 'postgres')))
    .sort((a, b) => b - a);
  return versions.length > 0 ? join(root, String(versions[0]), 'bin') : undefined;
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

/** The command line that runs `bin` as the PostgreSQL user (root may not run PostgreSQL). */
function asPostgresUserArgv(bin, args) {
  const asRoot = process.getuid?.() === 0;
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function asPostgresUser(bin, args) {
  const [command, argv] = asPostgresUserArgv(bin, args);
  const result = spawnSync(command, argv, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${result.stderr || result.stdout || result.error}`);
  }
}

/** Why `binDir` (from findPostgresBin) cannot start a server, or undefined when it can. */
export function postgresBinProblem(binDir = findPostgresBin()) {
  if (!binDir) return 'PostgreSQL 15 or later was not found in /usr/lib/postgresql';
  const missing = ['initdb', 'pg_ctl', 'postgres', 'psql'].filter((tool) => !existsSync(join(binDir, tool)));
  return missing.length > 0 ? `${binDir} has no ${missing.join(', ')}` : undefined;
}

/** A single-quoted SQL string literal. */
const literal = (text) => `'${String(text).replaceAll("'", "''")}'`;

/**
 * As asPostgresUser, without blocking this process: a RustyDB server running in it must go on
 * answering PostgreSQL meanwhile (at a fast stop the walsender waits for the node's capture to confirm
 * or let go of what it was sent, for up to wal_sender_timeout).
 */
function asPostgresUserAsync(bin, args) {
  const [command, argv] = asPostgresUserArgv(bin, args);
  return new Promise((resolve, reject) => {
    execFile(command, argv, { encoding: 'utf8' }, (error, stdout, stderr) => {
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
  writeFileSync(pwfile, `${password}\n`);
  if (process.getuid?.() === 0) {
    execFileSync('chown', ['-R', 'postgres', dir]);
    chmodSync(dir, 0o700);
    chownSync(pwfile, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), 0);
  }
  asPostgresUser(join(binDir, 'initdb'), [
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
  writeFileSync(join(data, 'postgresql.auto.conf'), `${settings.join('\n')}\n`);
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', join(data, 'postgresql.auto.conf')]);
  asPostgresUser(join(binDir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  const stop = () => {
    try {
      asPostgresUser(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
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
    binDir,
    stop,
    /** The server's main process (postmaster), while it runs. */
    get pid() {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    /**
     * Makes a login role with exactly what a deployment gives RustyDB (LOGIN, CREATEROLE, REPLICATION;
     * not a superuser) and an empty database of the same name that it owns; returns the role's URL.
     */
    createDatabase(name, rolePassword) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain lower-case name: ${name}`);
      for (const statement of [
        `CREATE ROLE ${name} LOGIN CREATEROLE REPLICATION PASSWORD ${literal(rolePassword)}`,
        `CREATE DATABASE ${name} OWNER ${name}`,
      ]) {
        execFileSync(join(binDir, 'psql'), ['-q', '-v', 'ON_ERROR_STOP=1', url, '-c', statement], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      }
      const owned = new URL(url);
      owned.username = name;
      owned.password = rolePassword;
      owned.pathname = `/${name}`;
      return owned.toString();
    },
    /** Stops the server, keeping its data (what a database outage looks like to the nodes). */
    pause() {
      return asPostgresUserAsync(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
    /** Starts it again after pause(). */
    resume() {
      return asPostgresUserAsync(join(binDir, 'pg_ctl'), [
        '-D',
        data,
        '-l',
        join(dir, 'log'),
        '-w',
        '-t',
        '30',
        'start',
      ]);
    },
  };
}
