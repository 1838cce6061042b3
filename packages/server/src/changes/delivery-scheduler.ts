/**
 * Hands change records to their subscribers without letting delivery starve everything else the
 * server does on its one event loop.
 *
 * - Records are delivered in passes: a pass offers the records that arrived since the last one to
 *   every target, in order, so each target sees every record once and in sequence (the plan may leave
 *   out records that cannot concern a target: it is then told how far the pass went).
 * - A pass works in slices of at most SLICE_MS and yields between them (setImmediate), so requests and
 *   other sockets' I/O are served between slices however many subscribers there are.
 * - Under sustained load passes are spaced: when records came in while a pass of W ms of work ran
 *   (delivery is behind a stream of commits), the next pass starts no sooner than GAP_FACTOR × W after
 *   it (at most MAX_GAP_MS). The records of that interval then go out together, so each subscriber's
 *   socket gets them in one write rather than one write per record. When nothing came in meanwhile,
 *   delivery has caught up and the next change goes out at once: a single change on a quiet server, or
 *   the next round of a writer that waits for its subscribers between writes, is not held back by the
 *   gap of the pass before (it was, up to 25 ms, in the GraphQL subscription bench's rounds).
 * - Records waiting for a pass are bounded: past MAX_PENDING the feed is told to wait (the records stay
 *   in the durable change log until delivery catches up).
 */
import type { ChangeRecord } from '../engine/engine.ts';

/** Longest run of delivery work before other work gets a turn. */
const SLICE_MS = 5;
/** Spacing between passes, as a multiple of the last pass's work. */
const GAP_FACTOR = 3;
const MAX_GAP_MS = 25;
/** Targets looked at between two reads of the clock. */
const CLOCK_EVERY = 16;
/** Records waiting for a pass beyond which the feed waits. */
const MAX_PENDING = 10_000;

/** Something that receives records in log order: a table subscription, a live query. */
export interface DeliveryTarget {
  /**
   * The records of a pass that may concern the target, in log order; `upTo` is the last record of the
   * whole pass, which the target has now seen (those left out did not concern it).
   */
  offer(records: readonly ChangeRecord[], upTo: number): unknown;
}

/**
 * Who a pass delivers to, fixed when the pass starts, and which of its records each is given. A list
 * and a lookup rather than a pair per target: a change fanned out to 10,000 subscribers then builds
 * one array, not 10,000 pairs (those pairs, made by a generator, cost more than the whole pass's
 * offering before the first frame could leave).
 */
export interface DeliveryPlan {
  readonly targets: readonly DeliveryTarget[];
  /** The records of the pass that may concern `target`, in log order. */
  recordsFor(target: DeliveryTarget): readonly ChangeRecord[];
}

export class DeliveryScheduler {
  readonly #plan: (records: readonly ChangeRecord[]) => DeliveryPlan;
  #pending: ChangeRecord[][] = [];
  #pendingCount = 0;
  #scheduled = false;
  #running = false;
  /** When the next pass may start (performance.now()). */
  #notBefore = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  /** @param plan who to deliver a pass's records to, and which of them; asked at the start of each pass */
  constructor(plan: (records: readonly ChangeRecord[]) => DeliveryPlan) {
    this.#plan = plan;
  }

  /** Records waiting for a pass. */
  get pending(): number {
    return this.#pendingCount;
  }

  /** Queues records for delivery; resolves once the queue has room for more (the feed waits on it). */
  push(records: readonly ChangeRecord[]): Promise<void> | undefined {
    if (this.#closed || records.length === 0) return undefined;
    this.#pending.push(records as ChangeRecord[]);
    this.#pendingCount += records.length;
    this.#schedule();
    if (this.#pendingCount < MAX_PENDING) return undefined;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#pendingCount = 0;
    this.#release();
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#closed) return;
    this.#scheduled = true;
    const wait = this.#notBefore - performance.now();
    const start = (): void => {
      this.#scheduled = false;
      void this.#pass();
    };
    if (wait > 1) setTimeout(start, wait);
    else setImmediate(start);
  }

  async #pass(): Promise<void> {
    if (this.#closed || this.#pendingCount === 0) return;
    this.#running = true;
    const batches = this.#pending;
    this.#pending = [];
    this.#pendingCount = 0;
    this.#release();
    const records = batches.length === 1 ? batches[0]! : batches.flat();
    const upTo = records[records.length - 1]!.seq;
    let work = 0;
    let sliceStart = performance.now();
    const plan = this.#plan(records);
    const targets = plan.targets;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      target.offer(plan.recordsFor(target), upTo);
      if ((i + 1) % CLOCK_EVERY !== 0 || i + 1 === targets.length) continue;
      const now = performance.now();
      if (now - sliceStart < SLICE_MS) continue;
      work += now - sliceStart;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.#closed) return;
      sliceStart = performance.now();
    }
    const end = performance.now();
    work += end - sliceStart;
    // Spaced only when records came in while this pass ran (see the module comment).
    this.#notBefore = this.#pendingCount > 0 ? end + Math.min(MAX_GAP_MS, work * GAP_FACTOR) : 0;
    this.#running = false;
    if (this.#pendingCount > 0) this.#schedule();
  }

  /** Lets the feed go on. */
  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
