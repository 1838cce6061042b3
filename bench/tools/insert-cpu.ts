/**
 * The server's CPU per keyed INSERT, for each durability: one server per durability, each with one
 * authenticated socket keeping WINDOW inserts on the wire (a new one goes out as each answer comes
 * back), in turns that alternate which server goes first, after a 5,000-insert warm-up each. Prints,
 * per turn and server, rows/s and the server's CPU per row (all its threads, from /proc). For measuring
 * a change to the write path: run it for each build, alternately.
 *
 *   node --import tsx bench/tools/insert-cpu.ts
 *
 * Settings (environment): MODES=full,normal (the durabilities), WINDOW=16 (1 for a lone writer),
 * ROWS=4000 (per turn), TURNS=4, PROF=DIR (the servers' CPU profiles into DIR), BINS=A,B (builds to
 * compare, each a path to a `rustydb.js`: one server per durability and build, all in the turns; by
 * default the tree's own build only), SERVER_NODE_ARGS (node flags for the servers, e.g. `--import
 * PRELOAD`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { StreamConnection, login } from '../lib/client.ts';
import { cpuSeconds, writeSyscalls } from '../lib/proc.ts';
import { startRustyServer, type RustyServerProcess } from '../lib/rusty-server.ts';

const SQL = 'INSERT INTO ins (id, v) VALUES (?, ?)';
const MODES = (process.env.MODES ?? 'full,normal').split(',');
const WINDOW = Number(process.env.WINDOW ?? 16);
const ROWS = Number(process.env.ROWS ?? 4000);
const TURNS = Number(process.env.TURNS ?? 4);
const WARM_UP_ROWS = 5000;
const BINS = process.env.BINS?.split(',');

interface Target {
  /** The durability, and the build when there are several. */
  mode: string;
  server: RustyServerProcess;
  conn: StreamConnection;
  dataDir: string;
  nextId: number;
  runs: Run[];
}

interface Run {
  rowsPerSecond: number;
  cpuPerRowUs: number;
  /** The server's write system calls per row: its answers' socket writes, and SQLite's to the WAL. */
  writesPerRow: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** Keeps `window` inserts outstanding until `rows` are answered; any answer but a row inserted fails. */
function insertRun(ws: WebSocket, pid: number, firstId: number, rows: number, window: number): Promise<Run> {
  const cpuBefore = cpuSeconds(pid);
  const writesBefore = writeSyscalls(pid);
  const started = performance.now();
  let sent = 0;
  let answered = 0;
  return new Promise((resolve, reject) => {
    const send = (): void => {
      const id = firstId + sent++;
      ws.send(
        JSON.stringify({ type: 'query', id: `i${id}`, payload: { sql: SQL, params: [id, `value-${id}`] } }),
      );
    };
    const onMessage = (data: WebSocket.RawData): void => {
      const reply = JSON.parse(String(data)) as { type: string; payload?: { rows_affected?: number } };
      if (reply.type !== 'data' || reply.payload?.rows_affected !== 1) {
        ws.off('message', onMessage);
        reject(new Error(`insert failed: ${String(data).slice(0, 300)}`));
        return;
      }
      if (++answered === rows) {
        ws.off('message', onMessage);
        resolve({
          rowsPerSecond: rows / ((performance.now() - started) / 1000),
          cpuPerRowUs: ((cpuSeconds(pid) - cpuBefore) / rows) * 1e6,
          writesPerRow: (writeSyscalls(pid) - writesBefore) / rows,
        });
      } else if (sent < rows) send();
    };
    ws.on('message', onMessage);
    while (sent < Math.min(window, rows)) send();
  });
}

const targets: Target[] = [];
try {
  for (const durability of MODES) {
    for (const [index, bin] of (BINS ?? [undefined]).entries()) {
      const mode = BINS ? `${durability} build ${index} (${bin})` : durability;
      const dataDir = mkdtempSync(join(tmpdir(), `insert-cpu-${durability}-`));
      const server = await startRustyServer({
        dataDir,
        flags: ['--durability', durability],
        ...(process.env.PROF ? { cpuProfileDir: process.env.PROF } : {}),
        ...(bin ? { bin } : {}),
        ...(process.env.SERVER_NODE_ARGS ? { nodeArgs: process.env.SERVER_NODE_ARGS.split(' ') } : {}),
      });
      const conn = await StreamConnection.open(server.streamUrl, await login(server.url));
      await conn.query('CREATE TABLE ins (id INTEGER PRIMARY KEY, v TEXT)');
      targets.push({ mode, server, conn, dataDir, nextId: 1, runs: [] });
      console.log(`${mode}: server pid ${server.pid}`);
    }
  }
  for (const target of targets) {
    await insertRun(target.conn.ws, target.server.pid, target.nextId, WARM_UP_ROWS, WINDOW);
    target.nextId += WARM_UP_ROWS;
  }
  for (let turn = 0; turn < TURNS; turn++) {
    for (const target of turn % 2 ? [...targets].reverse() : targets) {
      const run = await insertRun(target.conn.ws, target.server.pid, target.nextId, ROWS, WINDOW);
      target.nextId += ROWS;
      target.runs.push(run);
      console.log(
        `turn ${turn} ${target.mode}: ${Math.round(run.rowsPerSecond)} rows/s, ` +
          `server CPU ${run.cpuPerRowUs.toFixed(1)} µs/row, ${run.writesPerRow.toFixed(2)} write calls/row`,
      );
    }
  }
  for (const target of targets) {
    console.log(
      `median ${target.mode}: ${Math.round(median(target.runs.map((run) => run.rowsPerSecond)))} rows/s, ` +
        `server CPU ${median(target.runs.map((run) => run.cpuPerRowUs)).toFixed(1)} µs/row, ` +
        `${median(target.runs.map((run) => run.writesPerRow)).toFixed(2)} write calls/row`,
    );
  }
} finally {
  for (const target of targets) {
    await target.conn.close();
    await target.server.stop();
    rmSync(target.dataDir, { recursive: true, force: true });
  }
}
