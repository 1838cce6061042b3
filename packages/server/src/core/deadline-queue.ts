/**
 * Deadlines of many owners (each session's token expiry) on one timer.
 *
 * A `setTimeout` per session cost every authenticated connection a few hundred bytes (the Timeout,
 * its closure and its place in Node's timer lists). Here each deadline is one small entry in a binary
 * min-heap by time, and one timer is armed for the earliest: scheduling, moving and cancelling a
 * deadline are O(log n), and a deadline fires at its millisecond as a timer of its own would.
 *
 * An entry is anything with the two fields of `Scheduled`: an owner that lives as long as its deadline
 * (a session) is its own entry, with no object between it and the heap. Times are epoch milliseconds
 * in the queue's interface; an entry holds them as process-clock time (see process-clock.ts), a small
 * integer stored in the entry itself where an epoch time took a number object of its own.
 */
import { epochOf, sinceStart } from './process-clock.ts';

/** setTimeout holds at most 2^31-1 ms; a later deadline is reached by re-arming when the timer fires. */
const MAX_TIMER_DELAY = 2_147_483_647;

/** Epoch milliseconds of process-clock time 0. */
const CLOCK_ZERO = epochOf(0);

/** Process-clock time of `epoch` ms: exact, and a small integer (in V8's sense) where it is one. */
function clockOf(epoch: number): number {
  const time = epoch - CLOCK_ZERO;
  return (time | 0) === time ? time | 0 : time;
}

/** What the queue keeps in an entry. */
export interface Scheduled {
  /** @internal the queue's: when the entry is due, in process-clock time (see clockOf). */
  deadlineAt: number;
  /** @internal the queue's: its position in the heap, or -1 while not scheduled. */
  deadlineIndex: number;
}

/** A deadline as an object of its own, for an owner that is no entry itself (or a function to call). */
export class Deadline<T> implements Scheduled {
  deadlineAt = 0;
  deadlineIndex = -1;
  constructor(readonly owner: T) {}

  /** Epoch milliseconds at which it is due (when scheduled). */
  get at(): number {
    return epochOf(this.deadlineAt);
  }

  get scheduled(): boolean {
    return this.deadlineIndex >= 0;
  }
}

export class DeadlineQueue<E extends Scheduled> {
  readonly #heap: E[] = [];
  /** Called for each entry that came due, with the time (epoch ms) it was scheduled for. */
  readonly #due: (entry: E, at: number) => void;
  #timer: NodeJS.Timeout | undefined;
  /** The time (process clock) the timer is armed for (Infinity when it is not armed). */
  #timerAt = Infinity;

  /** See the constructor's `unref`. */
  readonly #unref: boolean;

  /**
   * @param due called for each entry that came due, with its time (epoch ms)
   * @param options.unref the timer keeps nothing alive; then cancelling the last deadline leaves it
   *   armed (it fires once, finds nothing due and stops) instead of clearing it at once: deadlines
   *   scheduled and cancelled in the same tick, one after another (a socket's time to authenticate,
   *   when its token came with the upgrade), then share one timer instead of arming one each.
   */
  constructor(due: (entry: E, at: number) => void, options: { unref?: boolean } = {}) {
    this.#due = due;
    this.#unref = options.unref ?? false;
  }

  /** Deadlines scheduled and not yet due. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules (or moves, if it is already scheduled) an entry to `epochAt` epoch milliseconds. */
  schedule(entry: E, epochAt: number): void {
    const at = clockOf(epochAt);
    if (entry.deadlineIndex >= 0) {
      const earlier = at < entry.deadlineAt;
      entry.deadlineAt = at;
      if (earlier) this.#up(entry.deadlineIndex);
      else this.#down(entry.deadlineIndex);
    } else {
      entry.deadlineAt = at;
      entry.deadlineIndex = this.#heap.length;
      this.#heap.push(entry);
      this.#up(entry.deadlineIndex);
    }
    this.#arm();
  }

  /** Removes an entry if it is scheduled; it will not fire. */
  cancel(entry: E): void {
    if (entry.deadlineIndex < 0) return;
    this.#removeAt(entry.deadlineIndex);
    if (this.#heap.length === 0 && !this.#unref) this.#disarm();
    // Otherwise the timer may be armed for the cancelled deadline: it fires, finds nothing due and
    // re-arms for the earliest, which is cheaper than re-arming on every cancel.
  }

  /** Arms the timer for the earliest deadline unless it is already armed for it or earlier. */
  #arm(): void {
    const first = this.#heap[0];
    if (first === undefined) {
      this.#disarm();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= first.deadlineAt) return;
    clearTimeout(this.#timer);
    const delay = Math.min(Math.max(first.deadlineAt - sinceStart(), 0), MAX_TIMER_DELAY);
    this.#timerAt = first.deadlineAt;
    this.#timer = setTimeout(this.#fire, delay);
    if (this.#unref) this.#timer.unref();
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Runs every deadline due by now, earliest first, then re-arms for the next. */
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    try {
      // The timer may fire a millisecond early by the wall clock, or be armed for a deadline too far
      // away for one timer: what is not due yet stays and the timer is armed again below.
      for (
        let first = this.#heap[0];
        first !== undefined && first.deadlineAt <= sinceStart();
        first = this.#heap[0]
      ) {
        this.#removeAt(0);
        this.#due(first, epochOf(first.deadlineAt));
      }
    } finally {
      // Even if an owner's handler threw, the others' deadlines stay armed.
      this.#arm();
    }
  };

  #removeAt(index: number): void {
    const heap = this.#heap;
    const removed = heap[index]!;
    const last = heap.pop()!;
    removed.deadlineIndex = -1;
    if (last === removed) return;
    heap[index] = last;
    last.deadlineIndex = index;
    // The element moved into the hole may belong above or below it.
    if (index > 0 && last.deadlineAt < heap[(index - 1) >> 1]!.deadlineAt) this.#up(index);
    else this.#down(index);
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.deadlineAt <= item.deadlineAt) break;
      heap[index] = parent;
      parent.deadlineIndex = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.deadlineIndex = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && heap[right]!.deadlineAt < heap[child]!.deadlineAt) child = right;
      const smaller = heap[child]!;
      if (smaller.deadlineAt >= item.deadlineAt) break;
      heap[index] = smaller;
      smaller.deadlineIndex = index;
      index = child;
    }
    heap[index] = item;
    item.deadlineIndex = index;
  }
}
