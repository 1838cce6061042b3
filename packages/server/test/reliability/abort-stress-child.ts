/**
 * The child process of abort-stress.test.ts: loops over the paths that can end a statement while the
 * native binding is inside it — cancel, statement timeout, client disconnect (WebSocket and HTTP) and
 * server shutdown — with long statements of every kind running (reads on worker threads, writes,
 * write and read-only transactions). Run in its own process so that an abort() ends only this
 * process, and the test sees it as the exit signal.
 *
 * Usage: node --import tsx abort-stress-child.ts ITERATIONS DATA_DIR
 * Prints one line per iteration ("iteration N ok"); exits 0 when all ran.
 */
import { request as httpRequest } from 'node:http';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { startServer, type RustyServer } from '../../src/server.ts';

const iterations = Number(process.argv[2]);
const dataDir = process.argv[3]!;

/** Runs until stopped: counts an endless sequence. */
const ENDLESS_READ = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
/** A write that runs until stopped (it never reaches its INSERT). */
const ENDLESS_WRITE = `INSERT INTO t (v) ${ENDLESS_READ}`;
/** A long scan that returns rows all along: stopping it finds it between rows, not in its first step. */
const LONG_SCAN = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c';

function open(server: RustyServer): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/api/v1/stream`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function reply(ws: WebSocket, id: string): Promise<{ type: string; payload: { code?: string } }> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const message = JSON.parse(data.toString()) as {
        id?: string;
        type: string;
        payload: { code?: string };
      };
      if (
        message.id !== id ||
        (message.type === 'data' && (message.payload as { has_more?: boolean }).has_more)
      )
        return;
      ws.off('message', onMessage);
      resolve(message);
    };
    ws.on('message', onMessage);
    ws.once('close', () => resolve({ type: 'closed', payload: {} }));
  });
}

function send(ws: WebSocket, id: string, type: string, payload: unknown): void {
  ws.send(JSON.stringify({ type, id, payload }));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const started = Date.now();
const trace = process.env.STRESS_TRACE
  ? (what: string) => process.stderr.write(`${Date.now() - started} ${what}\n`)
  : () => {};

async function iteration(n: number): Promise<void> {
  const config = loadConfig({
    overrides: {
      port: 0,
      data_dir: dataDir,
      require_authentication: false,
      enable_rate_limiting: false,
      statement_timeout: 0.1,
      engine_pool_size: 2,
    },
  });
  trace('starting');
  const server = await startServer(config, { logger: silentLogger });
  trace('started');
  const sockets = await Promise.all([open(server), open(server), open(server), open(server)]);
  const [canceller, disconnecter, timer, survivor] = sockets as [WebSocket, WebSocket, WebSocket, WebSocket];
  if (n === 0) {
    send(canceller, 'setup', 'query', { sql: 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v)' });
    await reply(canceller, 'setup');
  }
  // Vary the moment of each stop, so that over the loop it lands in every phase of a statement.
  const early = n % 7;
  // Cancel: a streamed scan, a write and a write transaction.
  send(canceller, 'scan', 'query', { sql: LONG_SCAN, chunk_size: 50 });
  send(canceller, 'write', 'query', { sql: ENDLESS_WRITE });
  send(canceller, 'tx', 'batch', {
    transaction: true,
    queries: [{ sql: 'INSERT INTO t (v) VALUES (1)' }, { sql: ENDLESS_WRITE }],
  });
  // Disconnect: the client goes away with a read and a read-only transaction running.
  send(disconnecter, 'read', 'query', { sql: ENDLESS_READ });
  send(disconnecter, 'rotx', 'batch', { transaction: true, queries: [{ sql: ENDLESS_READ }] });
  // Timeout: left to the statement timeout.
  send(timer, 'slow-read', 'query', { sql: ENDLESS_READ });
  send(timer, 'slow-write', 'query', { sql: ENDLESS_WRITE });
  // An HTTP client that goes away mid-statement.
  const http = httpRequest(`${server.url}/api/v1/query`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json' },
  });
  const request = new Promise<void>((resolve) => {
    http.once('close', () => resolve());
    http.once('error', () => resolve());
  });
  http.end(JSON.stringify({ sql: ENDLESS_READ }));
  await sleep(early * 5);
  for (const id of ['scan', 'write', 'tx']) send(canceller, `cancel-${id}`, 'cancel', { id });
  disconnecter.terminate();
  http.destroy();
  trace('stopping');
  await Promise.all([reply(timer, 'slow-read'), reply(timer, 'slow-write')]);
  trace('timed out');
  await request;
  trace('http done');
  // Shutdown: statements still running (and starting) when the server closes.
  send(survivor, 'last-read', 'query', { sql: LONG_SCAN, chunk_size: 10 });
  send(survivor, 'last-write', 'batch', { transaction: true, queries: [{ sql: ENDLESS_WRITE }] });
  send(survivor, 'last-rotx', 'batch', { transaction: true, queries: [{ sql: ENDLESS_READ }] });
  await sleep(early * 3);
  trace('closing');
  await server.close();
  trace('closed');
  for (const ws of sockets) ws.terminate();
}

for (let n = 0; n < iterations; n++) {
  await iteration(n);
  process.stdout.write(`iteration ${n + 1} ok\n`);
}
