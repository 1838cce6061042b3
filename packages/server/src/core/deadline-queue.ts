/**
 * Deadlines of many owners (each session's token expiry) on one timer.
 *
 * A `setTimeout` per session cost every authenticated connection a few hundred bytes (the Timeout,
 * its closure and its place in Node's timer lists). Here each deadline is one small entry in a binary
 * min-heap by time, and one timer is armed for the earliest: scheduling, moving and cancelling a
 * deadline are O(log n), and a deadline fires at its millisecond as a timer of its own would.
 */

/** setTimeout holds at most 2^31-1 ms; a later deadline is reached by re-arming when the timer fires. */
const MAX_TIMER_DELAY = 2_147_483_647;

/** One owner's deadline: where it is in the heap (-1 when not scheduled) and when it is due. */
export class Deadline<T> {
  /** Epoch milliseconds at which it is due. */
  at = 0;
  /** Its position in the heap, or -1 while not scheduled. */
  index = -1;
  constructor(readonly owner: T) {}

  get scheduled(): boolean {
    return this.index >= 0;
  }
}

export class DeadlineQueue<T> {
  readonly #heap: Deadline<T>[] = [];
  /** Called for each deadline that came due, with the time it was scheduled for. */
  readonly #due: (owner: T, at: number) => void;
  #timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for (Infinity when it is not armed). */
  #timerAt = Infinity;

  /** See the constructor's `unref`. */
  readonly #unref: boolean;

  /**
   * @param due called for each deadline that came due
   * @param options.unref the timer keeps nothing alive; then cancelling the last deadline leaves it
   *   armed (it fires once, finds nothing due and stops) instead of clearing it at once: deadlines
   *   scheduled and cancelled in the same tick, one after another (a socket's time to authenticate,
   *   when its token came with the upgrade), then share one timer instead of arming one each.
   */
  constructor(due: (owner: T, at: number) => void, options: { unref?: boolean } = {}) {
    this.#due = due;
    this.#unref = options.unref ?? false;
  }

  /** Deadlines scheduled and not yet due. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules (or moves, if it is already scheduled) a deadline to `at` epoch milliseconds. */
  schedule(deadline: Deadline<T>, at: number): void {
    if (deadline.scheduled) {
      const earlier = at < deadline.at;
      deadline.at = at;
      if (earlier) this.#up(deadline.index);
      else this.#down(deadline.index);
    } else {
      deadline.at = at;
      deadline.index = this.#heap.length;
      this.#heap.push(deadline);
      this.#up(deadline.index);
    }
    this.#arm();
  }

  /** Removes a deadline if it is scheduled; it will not fire. */
  cancel(deadline: Deadline<T>): void {
    if (!deadline.scheduled) return;
    this.#removeAt(deadline.index);
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
    if (this.#timer !== undefined && this.#timerAt <= first.at) return;
    clearTimeout(this.#timer);
    const delay = Math.min(Math.max(first.at - Date.now(), 0), MAX_TIMER_DELAY);
    this.#timerAt = first.at;
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
      for (let first = this.#heap[0]; first !== undefined && first.at <= Date.now(); first = this.#heap[0]) {
        this.#removeAt(0);
        this.#due(first.owner, first.at);
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
    removed.index = -1;
    if (last === removed) return;
    heap[index] = last;
    last.index = index;
    // The element moved into the hole may belong above or below it.
    if (index > 0 && last.at < heap[(index - 1) >> 1]!.at) this.#up(index);
    else this.#down(index);
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.at <= item.at) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const item = heap[index]!;
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && heap[right]!.at < heap[child]!.at) child = right;
      const smaller = heap[child]!;
      if (smaller.at >= item.at) break;
      heap[index] = smaller;
      smaller.index = index;
      index = child;
    }
    heap[index] = item;
    item.index = index;
  }
}
