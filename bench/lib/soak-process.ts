/**
 * One client process of the soak (bench/soak.ts). It holds subscribers, or query connections and
 * writers, and does what the bench asks over the IPC channel. Load is open loop: every connection sends
 * on a fixed schedule whatever the server's answers do, as real clients do, so a slow server shows up as
 * latency and unanswered requests rather than as a lower offered rate.
 * Run by bench/soak.ts: node --import tsx bench/lib/soak-process.ts (with an IPC channel)
 */
import type WebSocket from 'ws';
import { StreamConnection } from './client.ts';
import { serveCommands } from './ipc-process.ts';
import {
  SOAK_EVENTS,
  SOAK_KV,
  kvValue,
  type LoadReport,
  type SoakCommand,
  type SubscriberReport,
} from './soak-protocol.ts';

/** The clock every process stamps with, ms. */
const clock = (): number => performance.timeOrigin + performance.now();
/** How often the load schedule is looked at: every connection sends what is due since the last tick. */
const TICK_MS = 5;

interface Sent {
  kind: 'read' | 'scan' | 'write';
  at: number;
  key?: number;
}

/** A change event's payload, as far as the soak checks it. */
interface ChangePayload {
  sequence: number;
  row?: { id: number; sent_at: number };
}

class Subscriber {
  readonly connection: StreamConnection;
  /** Only some subscribers keep their delays: enough for percentiles, little to hand back. */
  readonly #timed: boolean;
  received = 0;
  lastSequence = 0;
  outOfOrder = 0;
  readonly ids = new Set<number>();
  duplicates = 0;
  errors = 0;
  errorSample: string | undefined;
  /** Commit-to-receipt delays, ms (from the row's own send time, on the shared clock). */
  readonly delays: number[] = [];

  constructor(connection: StreamConnection, timed: boolean) {
    this.connection = connection;
    this.#timed = timed;
    connection.ws.on('message', (data: WebSocket.RawData) => this.#receive(data as Buffer));
  }

  #receive(data: Buffer): void {
    const at = clock();
    const message = JSON.parse(data.toString()) as { type: string; id?: string; payload: ChangePayload };
    // The connection's one subscription: every change is its, and so is any error or end.
    if (message.type !== 'change') {
      if (message.type === 'subscribed') return;
      this.errors++;
      this.errorSample ??= data.toString().slice(0, 300);
      return;
    }
    const { sequence, row } = message.payload;
    if (sequence <= this.lastSequence) this.outOfOrder++;
    this.lastSequence = sequence;
    this.received++;
    if (row) {
      if (this.ids.has(row.id)) this.duplicates++;
      this.ids.add(row.id);
      if (this.#timed) this.delays.push(at - row.sent_at);
    }
  }
}

/** A query connection or writer with its schedule and what it has sent and heard back. */
class Loader {
  readonly connection: StreamConnection;
  readonly kind: 'query' | 'writer';
  readonly index: number;
  readonly pending = new Map<string, Sent>();
  /** Where answers are counted: the current run's report. */
  report: LoadReport;
  #next = 0;

  constructor(connection: StreamConnection, kind: 'query' | 'writer', index: number, report: LoadReport) {
    this.connection = connection;
    this.kind = kind;
    this.index = index;
    this.report = report;
    connection.ws.on('message', (data: WebSocket.RawData) => this.#receive(data as Buffer));
  }

  /** Sends the request number `this.#next` (its kind chosen by the schedule). */
  send(scanEvery: number, keys: number, windowEnd: number): void {
    const n = this.#next++;
    const id = `${this.index}-${n}`;
    const at = clock();
    let sql: string;
    let params: unknown[];
    let sent: Sent;
    if (this.kind === 'writer') {
      sql = `INSERT INTO ${SOAK_EVENTS} (writer, sent_at, note) VALUES (?, ?, ?)`;
      params = [this.index, at, 'a row written by the soak; every subscriber of the table receives it'];
      sent = { kind: 'write', at };
    } else if (scanEvery > 0 && n % scanEvery === scanEvery - 1) {
      // A scan of the whole key-value table: runs on a read worker, not on the event loop.
      sql = `SELECT count(*), max(v) FROM ${SOAK_KV} WHERE v > ?`;
      params = [kvValue(n % keys)];
      sent = { kind: 'scan', at };
    } else {
      const key = 1 + ((n * 7919 + this.index * 104729) % keys);
      sql = `SELECT v FROM ${SOAK_KV} WHERE k = ?`;
      params = [key];
      sent = { kind: 'read', at, key };
    }
    this.pending.set(id, sent);
    this.report.offered[sent.kind]++;
    if (at > windowEnd) this.report.lateSends++;
    this.connection.ws.send(JSON.stringify({ type: 'query', id, payload: { sql, params } }));
  }

  #receive(data: Buffer): void {
    const at = clock();
    const message = JSON.parse(data.toString()) as {
      type: string;
      id?: string;
      payload: { code?: string; has_more?: boolean; rows?: unknown[][] };
    };
    const sent = message.id === undefined ? undefined : this.pending.get(message.id);
    if (!sent) {
      this.report.unexpected++;
      this.report.unexpectedSample ??= data.toString().slice(0, 300);
      return;
    }
    if (message.type === 'data' && message.payload.has_more) return;
    this.pending.delete(message.id!);
    const latency = at - sent.at;
    if (message.type !== 'data') {
      const code = message.payload.code ?? message.type;
      this.report.errors[code] = (this.report.errors[code] ?? 0) + 1;
      this.report.errorSample ??= data.toString().slice(0, 300);
      return;
    }
    if (sent.kind === 'read') {
      const value = message.payload.rows?.[0]?.[0];
      if (value !== kvValue(sent.key!)) {
        this.report.wrong++;
        this.report.wrongSample ??= data.toString().slice(0, 300);
        return;
      }
    }
    this.report.answered[sent.kind]++;
    if (at <= this.report.windowEnd) this.report.answeredInWindow[sent.kind]++;
    this.report.latencies[sent.kind].push(latency);
  }
}

const subscribers: Subscriber[] = [];
const loaders: Loader[] = [];
/** One subscriber in this many keeps its delivery delays. */
const TIMED_EVERY = 10;

function emptyReport(): LoadReport {
  const kinds = () => ({ read: 0, scan: 0, write: 0 });
  return {
    windowStart: 0,
    windowEnd: 0,
    offered: kinds(),
    answered: kinds(),
    answeredInWindow: kinds(),
    latencies: { read: [], scan: [], write: [] },
    errors: {},
    wrong: 0,
    unexpected: 0,
    unanswered: 0,
    lateSends: 0,
  };
}

/** Runs work(0..count-1) with at most `concurrency` in flight. */
async function inPool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

/** Sends the open-loop load for `seconds`, then waits up to `drainMs` for the last answers. */
async function runLoad(command: Extract<SoakCommand, { cmd: 'run' }>): Promise<LoadReport> {
  const result = emptyReport();
  for (const loader of loaders) {
    loader.report = result;
    loader.pending.clear();
  }
  const start = clock();
  result.windowStart = start;
  result.windowEnd = start + command.seconds * 1000;
  const rateOf = (loader: Loader): number =>
    loader.kind === 'writer' ? command.writeRate : command.queryRate;
  // Each connection starts at its own phase, so that the process's requests are spread evenly in time.
  const phase = (loader: Loader, i: number): number => (i / loaders.length) * (1000 / rateOf(loader));
  const due = loaders.map(() => 0);
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = clock();
      const elapsed = Math.min(now, result.windowEnd) - start;
      loaders.forEach((loader, i) => {
        const shouldHaveSent = Math.floor(((elapsed - phase(loader, i)) * rateOf(loader)) / 1000) + 1;
        while (due[i]! < shouldHaveSent) {
          due[i]!++;
          loader.send(command.scanEvery, command.keys, result.windowEnd + TICK_MS * 4);
        }
      });
      if (now >= result.windowEnd) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  const drainEnd = clock() + command.drainMs;
  while (clock() < drainEnd && loaders.some((l) => l.pending.size > 0)) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  result.unanswered = loaders.reduce((sum, l) => sum + l.pending.size, 0);
  return result;
}

async function handle(command: SoakCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'open': {
      const placeholder = emptyReport();
      await inPool(command.subscribers, 20, async (i) => {
        const connection = await StreamConnection.open(command.streamUrl, command.token);
        subscribers.push(new Subscriber(connection, i % TIMED_EVERY === 0));
      });
      const open = async (kind: 'query' | 'writer', count: number, base: number): Promise<void> => {
        const opened: Loader[] = [];
        await inPool(count, 20, async (i) => {
          const connection = await StreamConnection.open(command.streamUrl, command.token);
          opened[i] = new Loader(connection, kind, base + i, placeholder);
        });
        loaders.push(...opened);
      };
      await open('query', command.queryConnections, command.indexBase);
      await open('writer', command.writers, command.indexBase + command.queryConnections);
      return { subscribers: subscribers.length, loaders: loaders.length };
    }
    case 'subscribe': {
      const sequences: number[] = [];
      await inPool(subscribers.length, 20, async (i) => {
        const subscriber = subscribers[i]!;
        const reply = await subscriber.connection.request({
          type: 'subscribe',
          payload: { table: SOAK_EVENTS },
        });
        if (reply.type !== 'subscribed') throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
        sequences.push((reply.payload as { sequence?: number }).sequence ?? 0);
      });
      return sequences;
    }
    case 'run':
      return runLoad(command);
    case 'subscribers': {
      // Waits (bounded) until every subscriber has `expected` changes, then reports.
      const deadline = clock() + command.waitMs;
      while (clock() < deadline && subscribers.some((s) => s.received < command.expected)) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return subscribers.map((s): SubscriberReport => ({
        received: s.received,
        outOfOrder: s.outOfOrder,
        duplicates: s.duplicates,
        errors: s.errors,
        ...(s.errorSample !== undefined ? { errorSample: s.errorSample } : {}),
        delays: s.delays,
      }));
    }
    case 'close':
      for (const s of subscribers) s.connection.ws.terminate();
      for (const l of loaders) l.connection.ws.terminate();
      subscribers.length = 0;
      loaders.length = 0;
      return null;
  }
}

serveCommands(handle);
