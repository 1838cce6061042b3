/**
 * Keeps the WAL small whichever path wrote. SQLite's automatic checkpoint runs inside the committing
 * call, which for the inline connection is the event loop, so every connection has it off and this
 * watches the WAL instead: after commits it looks at the file's size (a few microseconds, and only every
 * few commits) and, past the threshold, has the engine run a checkpoint off the loop. One at a time.
 */
import { statSync } from 'node:fs';

/** Inline commits between two looks at the WAL's size (each commit adds a few pages at most). */
const LOOK_EVERY = 16;

export class Checkpointer {
  readonly #walPath: string;
  readonly #thresholdBytes: number;
  readonly #checkpoint: () => Promise<void>;
  readonly #onError: (err: unknown) => void;
  #sinceLook = 0;
  #running: Promise<void> | undefined;
  #closed = false;

  /**
   * @param checkpoint runs one checkpoint off the event loop
   * @param onError told of a failed checkpoint (the next commit past the threshold tries again)
   */
  constructor(
    walPath: string,
    thresholdBytes: number,
    checkpoint: () => Promise<void>,
    onError: (err: unknown) => void,
  ) {
    this.#walPath = walPath;
    this.#thresholdBytes = thresholdBytes;
    this.#checkpoint = checkpoint;
    this.#onError = onError;
  }

  /** Called after every commit. `large`: the commit may have written many pages (look at once). */
  committed(large: boolean): void {
    if (this.#running || this.#closed) return;
    if (!large && ++this.#sinceLook < LOOK_EVERY) return;
    this.#sinceLook = 0;
    if (this.walBytes() >= this.#thresholdBytes) this.run();
  }

  /** The WAL's size now, in bytes (0 when there is none). */
  walBytes(): number {
    return statSync(this.#walPath, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** Starts a checkpoint unless one is running; resolves when the running one ends. */
  run(): Promise<void> {
    this.#running ??= this.#checkpoint()
      .catch((err: unknown) => this.#onError(err))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Waits for a running checkpoint; starts no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }
}
