/**
 * What the live hooks render from: a store for React's useSyncExternalStore that opens its source
 * (a subscription, a change stream) when the first component listens and closes it when the last one
 * leaves, and publishes a new state at most once per frame however many changes arrive, so that each
 * change costs the source's own O(1) work and a burst of changes costs one render.
 */
import type { RustyDBClient } from '../client.ts';

type Frame = (callback: () => void) => void;

/** The next animation frame in a browser (none while the page is hidden), else a short timer. */
const nextFrame: Frame =
  typeof (globalThis as { requestAnimationFrame?: unknown }).requestAnimationFrame === 'function'
    ? (callback) =>
        (globalThis as unknown as { requestAnimationFrame: Frame }).requestAnimationFrame(callback)
    : (callback) => void setTimeout(callback, 16);

export class LiveStore<S extends object> {
  #state: S;
  readonly #listeners = new Set<() => void>();
  readonly #open: (store: LiveStore<S>) => () => void;
  #close: (() => void) | undefined;
  readonly #quiet: ReadonlySet<keyof S>;
  #next: (() => S) | undefined;
  #framePending = false;

  /**
   * `open` starts the source and returns what stops it; it is called when the first listener comes.
   * `quiet`: fields whose change alone is not worth a render (they show with the next one).
   */
  constructor(initial: S, open: (store: LiveStore<S>) => () => void, quiet: readonly (keyof S)[] = []) {
    this.#state = initial;
    this.#open = open;
    this.#quiet = new Set(quiet);
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#close = this.#open(this);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size > 0) return;
      const close = this.#close;
      this.#close = undefined;
      this.#next = undefined;
      close?.();
    };
  };

  readonly getSnapshot = (): S => this.#state;

  #sameAsShown(state: S): boolean {
    const shown = this.#state;
    for (const key of Object.keys(state) as (keyof S)[]) {
      if (!this.#quiet.has(key) && !Object.is(state[key], shown[key])) return false;
    }
    return true;
  }

  /**
   * Publishes the state `compute` returns at the next frame; later calls before it replace it. A state
   * that differs from the current one only in quiet fields (or not at all) publishes nothing.
   */
  update(compute: () => S): void {
    this.#next = compute;
    if (this.#framePending) return;
    this.#framePending = true;
    nextFrame(() => {
      this.#framePending = false;
      const next = this.#next;
      this.#next = undefined;
      if (!next || this.#listeners.size === 0) return;
      const state = next();
      if (this.#sameAsShown(state)) return;
      this.#state = state;
      for (const listener of [...this.#listeners]) listener();
    });
  }
}

/**
 * Runs `attach` now and again each time the client is opened after being closed (its subscriptions
 * ended with the close); returns what detaches for good.
 */
export function whileOpen(client: RustyDBClient, attach: () => () => void): () => void {
  let detach = attach();
  let closed = client.state === 'closed';
  const off = client.on('state', (state) => {
    if (state === 'closed') closed = true;
    else if (closed) {
      closed = false;
      detach();
      detach = attach();
    }
  });
  return () => {
    off();
    detach();
  };
}
