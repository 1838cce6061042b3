/**
 * Many WebSocket subscribers spread over several client processes (one Node process saturates long
 * before a server does). Each process (bench/lib/subscriber-process.ts) holds its share of the
 * sockets of every target ("side") and takes orders from the bench over the IPC channel: connect,
 * subscribe, arm for one message per socket, report receipt times. Receipts are stamped with
 * `performance.timeOrigin + performance.now()`, a clock every process on the machine shares.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Child, REPO_ROOT } from './children.ts';

/** Which server a socket belongs to. */
export type Side = 'rusty' | 'raw';

export type Command =
  /** Open `count` sockets to `url`; with a token, authenticate each on `/api/v1/stream`. */
  | { cmd: 'connect'; side: Side; url: string; token?: string; count: number; concurrency: number }
  /** Every `rusty` socket subscribes to `table`. */
  | { cmd: 'subscribe'; table: string; concurrency: number }
  /** Forget earlier receipts of `side` and stamp the next message on each of its sockets. */
  | { cmd: 'arm'; side: Side }
  /** Check what arrived since `arm` (a change of `round`) and hand back the receipt times. */
  | { cmd: 'report'; side: Side; round: number }
  | { cmd: 'clock' }
  | { cmd: 'close' };

export type Request = Command & { seq: number };

export type Reply =
  | { seq: number; ok: true; result: unknown }
  | { seq: number; ok: false; error: string }
  /** Every socket of `side` has received its message since the last `arm`. */
  | { event: 'complete'; side: Side };

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

const READY_PATTERN = /subscriber process ready/;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class SubscriberProcess {
  readonly child: Child;
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  readonly #events: EventEmitter;
  #seq = 0;
  readonly complete: Record<Side, boolean> = { rusty: false, raw: false };

  constructor(events: EventEmitter) {
    this.#events = events;
    this.#proc = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/subscriber-process.ts'], {
      cwd: REPO_ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    // Tracked by PID with the bench's other children: stopped on the way out, whatever happens.
    this.child = new Child(this.#proc);
    this.#proc.on('message', (raw) => this.#receive(raw as Reply));
    void this.child.exited.then(() => {
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`subscriber process ${this.child.pid} exited:\n${this.child.output}`));
      }
      this.#pending.clear();
    });
  }

  #receive(reply: Reply): void {
    if ('event' in reply) {
      this.complete[reply.side] = true;
      this.#events.emit('complete');
      return;
    }
    const pending = this.#pending.get(reply.seq);
    if (!pending) return;
    this.#pending.delete(reply.seq);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(new Error(`subscriber process ${this.child.pid}: ${reply.error}`));
  }

  ask<T>(command: Command, timeoutMs: number): Promise<T> {
    const seq = ++this.#seq;
    if (command.cmd === 'arm') this.complete[command.side] = false;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(
          new Error(`subscriber process ${this.child.pid}: no answer to '${command.cmd}' in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#pending.set(seq, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.#proc.send({ ...command, seq } satisfies Request);
    });
  }
}

export class SubscriberPool {
  readonly #processes: SubscriberProcess[];
  readonly #events = new EventEmitter();

  private constructor(size: number) {
    this.#processes = Array.from({ length: size }, () => new SubscriberProcess(this.#events));
  }

  static async start(size: number): Promise<SubscriberPool> {
    const pool = new SubscriberPool(size);
    try {
      await Promise.all(pool.#processes.map((p) => p.child.waitFor(READY_PATTERN)));
    } catch (err) {
      await pool.stop();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.#processes.length;
  }

  get pids(): number[] {
    return this.#processes.map((p) => p.child.pid);
  }

  /** Sends each process its own command and waits for every answer. */
  all<T>(commandFor: (index: number) => Command, timeoutMs: number): Promise<T[]> {
    return Promise.all(this.#processes.map((p, i) => p.ask<T>(commandFor(i), timeoutMs)));
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
        const theirs = await p.ask<number>({ cmd: 'clock' }, 5_000);
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
    await Promise.all(this.#processes.map((p) => p.child.stop()));
  }
}
