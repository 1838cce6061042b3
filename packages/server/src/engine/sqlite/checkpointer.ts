/**
 * Keeps the WAL small whichever path wrote. SQLite's automatic checkpoint runs inside the committing
 * call, which for the inline connection is the event loop, so every connection has it off and this
 * watches the WAL instead: after commits it looks at the file's size (a few microseconds, and only every
 * few commits) and, past the threshold, has a checkpoint run off the loop. One at a time.
 *
 * A checkpoint has two passes. The first runs beside the writers and copies the bulk of the WAL; the
 * second runs while no write of this server runs (holding the write gate) and copies the little written
 * meanwhile, so that it reaches the WAL's end and the next write starts the WAL over instead of growing
 * it. The first pass syncs the files and can take a few hundred milliseconds on a busy disk, while inline
 * writes can append tens of MB in that time; so once the WAL passes the brake size during a checkpoint,
 * the second pass takes the gate at once: writers then wait for the checkpoint (they never fail for it)
 * and the WAL stays bounded during sustained writes, not only once they stop.
 */
import { statSync } from 'node:fs';

/**
 * Keyed writes committed between two looks at the WAL's size while no checkpoint runs (each adds a few
 * pages).
 */
const LOOK_EVERY = 16;

export interface CheckpointerOptions {
  walPath: string;
  /** The WAL size past which a checkpoint starts. */
  thresholdBytes: number;
  /** The WAL size past which writers wait for the running checkpoint instead of growing the WAL. */
  brakeBytes: number;
  /** Runs one checkpoint pass off the event loop; `urgent` when it holds the write gate. */
  pass: (urgent: boolean) => Promise<void>;
  /** Runs `work` while no write of this server runs (writers queue meanwhile). */
  exclusive: (work: () => Promise<void>) => Promise<void>;
  /** Told of a failed checkpoint (the next commit past the threshold tries again). */
  onError: (err: unknown) => void;
}

export class Checkpointer {
  readonly #options: CheckpointerOptions;
  #sinceLook = 0;
  #running: Promise<void> | undefined;
  /** Set while a checkpoint's first pass runs: ends it early by taking the write gate at once. */
  #brake: (() => void) | undefined;
  #closed = false;

  constructor(options: CheckpointerOptions) {
    this.#options = options;
  }

  /**
   * Called after every commit. `large`: the commit may have written many pages (look at once);
   * otherwise it carried `keyedWrites` single-row writes (a commit group: several).
   */
  committed(large: boolean, keyedWrites = 1): void {
    if (this.#closed) return;
    if (this.#running) {
      // Look after every commit here: the brake is what bounds the WAL while the first pass runs.
      if (this.#brake && this.walBytes() >= this.#options.brakeBytes) this.#brake();
      return;
    }
    if (!large && (this.#sinceLook += keyedWrites) < LOOK_EVERY) return;
    this.#sinceLook = 0;
    if (this.walBytes() >= this.#options.thresholdBytes) void this.run();
  }

  /** The WAL's size now, in bytes (0 when there is none). */
  walBytes(): number {
    return statSync(this.#options.walPath, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** Starts a checkpoint unless one is running; resolves when the running one ends. */
  run(): Promise<void> {
    this.#running ??= this.#twoPasses()
      .catch((err: unknown) => this.#options.onError(err))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #twoPasses(): Promise<void> {
    const first = this.#options.pass(false);
    // Handled below, inside the gate; marked handled now in case the brake takes the gate first.
    first.catch(() => {});
    const braked = new Promise<void>((resolve) => (this.#brake = resolve));
    try {
      await Promise.race([first, braked]);
    } finally {
      this.#brake = undefined;
    }
    await this.#options.exclusive(async () => {
      await first;
      await this.#options.pass(true);
    });
  }

  /** Waits for a running checkpoint; starts no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }
}
