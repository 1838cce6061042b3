/**
 * One client process of the fan-out benchmark: holds its share of the subscriber sockets and does
 * what bench/lib/subscriber-pool.ts asks over the IPC channel. While armed, each socket's next message
 * is stamped on arrival and kept as is; it is only parsed and checked afterwards, on `report`, so that
 * the client does as little as possible while the deliveries are being timed.
 * Run by SubscriberPool: node --import tsx bench/lib/subscriber-process.ts (with an IPC channel)
 */
import type WebSocket from 'ws';
import { StreamConnection, openSocket } from './client.ts';
import { sendEvent, serveCommands } from './ipc-process.ts';
import {
  SIDES,
  sharedClock,
  type Command,
  type CompleteEvent,
  type RoundReport,
  type Side,
} from './subscriber-pool.ts';

class Group {
  readonly side: Side;
  readonly sockets: WebSocket[] = [];
  readonly connections: StreamConnection[] = [];
  receivedAt = new Float64Array(0);
  messages: (Buffer | undefined)[] = [];
  count = 0;
  extra = 0;
  armed = false;

  constructor(side: Side) {
    this.side = side;
  }

  add(ws: WebSocket): void {
    const index = this.sockets.length;
    this.sockets.push(ws);
    ws.on('message', (data) => {
      const at = sharedClock();
      if (!this.armed) return;
      if (this.receivedAt[index] !== 0) {
        this.extra++;
        return;
      }
      this.receivedAt[index] = at;
      this.messages[index] = data as Buffer;
      if (++this.count === this.sockets.length)
        sendEvent({ event: 'complete', side: this.side } satisfies CompleteEvent);
    });
  }

  arm(): void {
    this.receivedAt = new Float64Array(this.sockets.length);
    this.messages = new Array<Buffer | undefined>(this.sockets.length);
    this.count = 0;
    this.extra = 0;
    this.armed = true;
  }

  report(round: number): RoundReport {
    this.armed = false;
    let invalid = 0;
    let invalidSample: string | undefined;
    let sample = '';
    for (const message of this.messages) {
      if (!message) continue;
      const text = message.toString();
      sample ||= text;
      let ok = false;
      try {
        const parsed = JSON.parse(text) as { type?: string; payload?: { row?: { round?: unknown } } };
        ok = parsed.type === 'change' && parsed.payload?.row?.round === round;
      } catch {
        ok = false;
      }
      if (!ok) {
        invalid++;
        invalidSample ??= text.slice(0, 300);
      }
    }
    return {
      expected: this.sockets.length,
      receipts: Array.from(this.receivedAt),
      invalid,
      ...(invalidSample !== undefined ? { invalidSample } : {}),
      extra: this.extra,
      sample,
      bytes: Buffer.byteLength(sample),
    };
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.length = 0;
    this.connections.length = 0;
  }
}

const groups = Object.fromEntries(SIDES.map((side) => [side, new Group(side)])) as Record<Side, Group>;

/** Runs work(0..count-1) with at most `concurrency` in flight. */
async function inPool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

async function handle(request: Command): Promise<unknown> {
  switch (request.cmd) {
    case 'connect': {
      const group = groups[request.side];
      const started = performance.now();
      await inPool(request.count, request.concurrency, async () => {
        if (request.token === undefined) {
          group.add(await openSocket(request.url));
        } else {
          const connection = await StreamConnection.open(request.url, request.token);
          group.connections.push(connection);
          group.add(connection.ws);
        }
      });
      return { count: group.sockets.length, ms: performance.now() - started };
    }
    case 'subscribe': {
      const connections = groups[request.side ?? 'rusty'].connections;
      const sequences: number[] = [];
      const started = performance.now();
      let at = 0;
      await inPool(connections.length, request.concurrency, async () => {
        const connection = connections[at++]!;
        const reply = await connection.request({ type: 'subscribe', payload: { table: request.table } });
        if (reply.type !== 'subscribed') throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
        sequences.push((reply.payload as { sequence: number }).sequence);
      });
      return { count: sequences.length, ms: performance.now() - started, sequences };
    }
    case 'arm':
      groups[request.side].arm();
      return null;
    case 'report':
      return groups[request.side].report(request.round);
    case 'clock':
      return sharedClock();
    case 'close':
      for (const group of Object.values(groups)) group.close();
      return null;
  }
}

serveCommands(handle);
