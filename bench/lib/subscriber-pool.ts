/**
 * Many WebSocket subscribers spread over several client processes (one Node process saturates long
 * before a server does). Each process (bench/lib/subscriber-process.ts) holds its share of the
 * sockets of every target ("side") and takes orders from the bench over the IPC channel: connect,
 * subscribe, arm for one message per socket, report receipt times. Receipts are stamped with
 * `performance.timeOrigin + performance.now()`, a clock every process on the machine shares.
 */
import { EventEmitter } from 'node:events';
import { startIpcProcesses, type IpcProcess } from './ipc-process.ts';

/**
 * Which target a socket belongs to: the fan-out benchmark's RustyDB server or raw `ws` server, or the
 * cluster fan-out's single node or three nodes.
 */
export const SIDES = ['rusty', 'raw', 'one-node', 'three-nodes'] as const;
export type Side = (typeof SIDES)[number];

export type Command =
  /** Open `count` sockets to `url`; with a token, authenticate each on `/api/v1/stream`. */
  | { cmd: 'connect'; side: Side; url: string; token?: string; count: number; concurrency: number }
  /** Every authenticated socket of `side` (default `rusty`) subscribes to `table`. */
  | { cmd: 'subscribe'; side?: Side; table: string; concurrency: number }
  /** Forget earlier receipts of `side` and stamp the next message on each of its sockets. */
  | { cmd: 'arm'; side: Side }
  /** Check what arrived since `arm` (a change of `round`) and hand back the receipt times. */
  | { cmd: 'report'; side: Side; round: number }
  | { cmd: 'clock' }
  | { cmd: 'close' };

/** Every socket of `side` has received its message since the last `arm`. */
export interface CompleteEvent {
  event: 'complete';
  side: Side;
}

export interface ConnectResult {
  count: number;
  ms: number;
}

export interface SubscribeResult {
  count: number;
  ms: number;
  /** The sequences the subscriptions were acknowledged at. */
  sequences: number[];
}

export interface RoundReport {
  expected: number;
  /** Receipt time of each socket's message (0: nothing arrived), shared clock, ms. */
  receipts: number[];
  /** Messages that were not the expected change of the round. */
  invalid: number;
  invalidSample?: string;
  /** Further messages after the first on a socket. */
  extra: number;
  /** The text of one received message, and its size in bytes. */
  sample: string;
  bytes: number;
}

/** The clock every process stamps with, ms. */
export const sharedClock = (): number => performance.timeOrigin + performance.now();

const SCRIPT = 'bench/lib/subscriber-process.ts';

/** One client process, and which sides it has reported complete since their last `arm`. */
interface Member {
  process: IpcProcess<Command, CompleteEvent>;
  complete: Record<Side, boolean>;
}

export class SubscriberPool {
  readonly #processes: Member[];
  readonly #events: EventEmitter;

  private constructor(processes: Member[], events: EventEmitter) {
    this.#processes = processes;
    this.#events = events;
  }

  static async start(size: number): Promise<SubscriberPool> {
    const events = new EventEmitter();
    const members: Member[] = [];
    const processes = await startIpcProcesses<Command, CompleteEvent>(SCRIPT, size, (event, index) => {
      members[index]!.complete[event.side] = true;
      events.emit('complete');
    });
    for (const process of processes) {
      members.push({
        process,
        complete: Object.fromEntries(SIDES.map((side) => [side, false])) as Record<Side, boolean>,
      });
    }
    return new SubscriberPool(members, events);
  }

  get size(): number {
    return this.#processes.length;
  }

  get pids(): number[] {
    return this.#processes.map((p) => p.process.child.pid);
  }

  /** Sends each process its own command and waits for every answer. */
  all<T>(commandFor: (index: number) => Command, timeoutMs: number): Promise<T[]> {
    return Promise.all(
      this.#processes.map((p, i) => {
        const command = commandFor(i);
        if (command.cmd === 'arm') p.complete[command.side] = false;
        return p.process.ask<T>(command, timeoutMs);
      }),
    );
  }

  /** Resolves true once every process has reported `side` complete, false after `timeoutMs`. */
  waitComplete(side: Side, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.#processes.every((p) => p.complete[side])) finish(true);
      };
      const finish = (done: boolean): void => {
        clearTimeout(timer);
        this.#events.off('complete', check);
        resolve(done);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#events.on('complete', check);
      check();
    });
  }

  /**
   * Checks that each process's clock agrees with ours: a reading taken in the child must fall between
   * our readings before the request and after the answer. Returns the worst disagreement, ms (0: none
   * measurable beyond the IPC round trip, which is also returned).
   */
  async clockCheck(probes = 5): Promise<{ skewMs: number; roundTripMs: number }> {
    let skewMs = 0;
    let roundTripMs = Infinity;
    for (const p of this.#processes) {
      let best = Infinity;
      for (let i = 0; i < probes; i++) {
        const before = sharedClock();
        const theirs = await p.process.ask<number>({ cmd: 'clock' }, 5_000);
        const after = sharedClock();
        roundTripMs = Math.min(roundTripMs, after - before);
        best = Math.min(best, Math.max(0, before - theirs, theirs - after));
      }
      skewMs = Math.max(skewMs, best);
    }
    return { skewMs, roundTripMs };
  }

  /** Stops every process (their sockets close with them). */
  async stop(): Promise<void> {
    await Promise.all(this.#processes.map((p) => p.process.stop()));
  }
}
