/**
 * The main-thread side of the read workers: a fixed set of worker threads, each running one read
 * statement at a time and handing its rows over in chunks, a few chunks ahead of the consumer (as JSON
 * text when the consumer only sends them on: made by the worker, or by the main thread from the
 * worker's packed rows while the worker is what holds a lone stream back; see `stream`). Stopping a
 * statement (cancel, timeout, consumer gone) answers the caller at once; the worker itself rejoins the
 * pool only when it reports that the statement is over.
 *
 * A worker is never terminated: terminating a thread while libsql is inside a native call aborts the
 * whole process (neon's external.rs assertion). Its statement is interrupted instead, and at close each
 * worker ends its statement, closes its connection and exits by itself.
 */
import { Worker } from 'node:worker_threads';
import type { ResultChunk } from '../engine.ts';
import { RustyError } from '../../errors/rusty-error.ts';
import type { DriverValue } from './values.ts';
import { FairShare } from '../fair-share.ts';
import { packedRowsJson, type PackedRows } from './packed-rows.ts';
import { EventLoopLoad } from '../event-loop-load.ts';

type WorkerMessage = { runId: number } & (
  | { type: 'columns'; columns: string[] }
  | { type: 'chunk'; rows: ResultChunk['rows']; done: boolean; json?: undefined; packed?: undefined }
  | { type: 'chunk'; json: string; count: number; done: boolean; rows?: undefined; packed?: undefined }
  | { type: 'chunk'; packed: PackedRows; count: number; done: boolean; rows?: undefined; json?: undefined }
  | { type: 'error'; code: string; message: string }
  | { type: 'stopped' }
);

/** The worker's error code when the schema is no longer the one the statement was authorized for. */
export const SCHEMA_CHANGED = 'SCHEMA_CHANGED';

/** A read for a worker: it runs only against the schema version its authorization was decided on. */
export interface WorkerRead {
  sql: string;
  params: DriverValue[];
  schemaVersion: number;
}

/**
 * Chunks a worker may have read ahead of the consumer. One let the worker and the consumer each wait
 * for the other's message once per chunk; a few keep both busy, and backpressure still stops the worker
 * after at most this many chunks once the consumer stops taking them.
 */
export const CHUNKS_AHEAD = 3;

/**
 * The largest chunk whose rows the main thread serializes (see ReadWorkerPool.stream): ~0.3 µs a row,
 * so ~2 ms of the event loop per chunk of narrow rows on the bench's host. Larger chunks (a client's
 * chunk_size, or an unstreamed result of up to 100,000 rows in one) are serialized by their worker.
 */
const PACKED_CHUNK_ROWS_AT_MOST = 5000;

/**
 * Text (UTF-16 code units) of a packed chunk past which its stream's later chunks are serialized by
 * the worker: rows that wide would cost the event loop more than the ~2 ms a chunk the row cap allows
 * for (JSON.stringify scans every character). The first such chunk is serialized here; one is enough
 * to tell.
 */
const PACKED_TEXT_AT_MOST = 1 << 20;

/**
 * The main thread serializes a lone stream's rows only while its event loop was busy less than this
 * share of the last window (EventLoopLoad): past it, the time would be taken from the other clients.
 * Checked at every chunk, so a stream moves its serializing back to its worker as the loop fills up
 * (and the stream's own share, ~30% of the loop at full speed on the bench's host, counts too).
 */
const SERIALIZE_HERE_WHILE_LOOP_BUSY_UNDER = 0.5;

/** An error from the worker, shaped like the driver's so normalizeError maps it the same way. */
class WorkerSqlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

class ReadWorker {
  readonly thread: Worker;
  /** Messages not yet taken, and a taker waiting for the next one. */
  readonly #queue: WorkerMessage[] = [];
  #taker: ((message: WorkerMessage) => void) | undefined;
  #pending: Promise<WorkerMessage> | undefined;
  failed: Error | undefined;
  /** Resolves when the thread has ended. */
  readonly exited: Promise<void>;

  constructor(path: string) {
    // Plain JavaScript: no loader hooks (the server's TypeScript loader would cost every start).
    this.thread = new Worker(new URL('./read-worker.js', import.meta.url), {
      workerData: { path },
      execArgv: [],
      // A small heap makes the worker collect often: it allocates every row it hands over, and a
      // large, lazily collected heap would grow by hundreds of MB over a long stream. Its garbage is
      // per chunk (rows and their JSON, tens of KB): a 4 MB young generation holds it, where 16 MB
      // cost ~13 MB more resident memory while streaming (bench (d)), for no throughput.
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4 },
    });
    this.thread.on('message', (message: WorkerMessage) => this.#deliver(message));
    this.thread.on('error', (err) => {
      this.failed = err;
      this.#deliver({ type: 'error', runId: this.runId, code: 'WORKER_FAILED', message: err.message });
    });
    this.exited = new Promise((resolve) =>
      this.thread.once('exit', () => {
        // Whoever still waits for this thread learns that it is gone.
        this.#deliver({
          type: 'error',
          runId: this.runId,
          code: 'WORKER_CLOSED',
          message: 'engine is closed',
        });
        resolve();
      }),
    );
    this.thread.unref();
  }

  /** The run this worker is on; messages of earlier runs are dropped. */
  runId = 0;

  beginRun(runId: number): void {
    this.runId = runId;
    this.#queue.length = 0;
  }

  /** Whether a message of the run is waiting to be taken: the worker is ahead of its consumer. */
  get ahead(): boolean {
    return this.#queue.length > 0;
  }

  #deliver(message: WorkerMessage): void {
    if (message.runId !== this.runId) return;
    const taker = this.#taker;
    this.#taker = undefined;
    if (taker) taker(message);
    else this.#queue.push(message);
  }

  /**
   * The next message from the worker, in order. A caller that stops waiting (a race lost to an abort)
   * leaves its request open; the next caller shares it, so no message is ever dropped.
   */
  next(): Promise<WorkerMessage> {
    if (this.#pending) return this.#pending;
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    this.#pending = new Promise<WorkerMessage>((resolve) => {
      this.#taker = (message) => {
        this.#pending = undefined;
        resolve(message);
      };
    });
    return this.#pending;
  }

  post(message: unknown, transfer?: ArrayBuffer[]): void {
    this.thread.postMessage(message, transfer);
  }
}

/**
 * Workers kept started while no read runs, once reads have started them. Each is a V8 isolate with its
 * own libsql connection and page cache (~11 MB resident): the pool grows to its size only while reads
 * run at once, and shrinks back to this.
 *
 * None is started before the first read that needs one (a scan: keyed reads and writes run inline or
 * on pooled connections and never do), so a server that has not served one holds none: the first scan
 * after start waits for its thread to start, as a second scan running at once waits for the second
 * worker (55-60 ms of CPU, once; see docs/operations.md, An idle server).
 */
const KEPT_IDLE = 1;
/** How long a worker beyond KEPT_IDLE may stay idle before it ends. */
export const IDLE_WORKER_MS = 30_000;

export interface ReadWorkerPoolOptions {
  /** How long a worker beyond the one kept may stay idle before it ends (default IDLE_WORKER_MS). */
  idleMs?: number;
}

export class ReadWorkerPool {
  readonly #path: string;
  readonly #size: number;
  readonly #idleMs: number;
  /** Idle workers, the most recently used last: the others are the ones left to end. */
  readonly #idle: ReadWorker[] = [];
  readonly #all = new Set<ReadWorker>();
  /** Workers told to end for being idle, until they have. */
  readonly #ending = new Set<ReadWorker>();
  readonly #retireTimers = new Map<ReadWorker, NodeJS.Timeout>();
  /** Who gets a worker next: workers are shared fairly between users (see FairShare). */
  readonly #share: FairShare<ReadWorker>;
  /** How busy this thread's event loop has been lately: see `stream`. */
  readonly #loopLoad = new EventLoopLoad();
  #closed = false;
  /** Chunks whose rows this thread serialized, packed by their worker (see `stream`). */
  #serializedHere = 0;

  constructor(path: string, size: number, options: ReadWorkerPoolOptions = {}) {
    this.#path = path;
    this.#size = size;
    this.#idleMs = options.idleMs ?? IDLE_WORKER_MS;
    this.#share = new FairShare(size);
  }

  /** Chunks whose rows this thread serialized from their worker's packed values (see `stream`). */
  get serializedHere(): number {
    return this.#serializedHere;
  }

  /** Worker threads running now, ending ones included. */
  get started(): number {
    return this.#all.size + this.#ending.size;
  }

  async #acquire(user: string, signal: AbortSignal): Promise<ReadWorker> {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'engine is closed');
    if (this.#share.mayTake(user)) {
      const worker = this.#idle.pop() ?? this.#spawn();
      if (worker) {
        this.#share.take(user);
        this.#keep(worker);
        return worker;
      }
    }
    return this.#share.wait(user, signal);
  }

  #spawn(): ReadWorker | undefined {
    if (this.#all.size >= this.#size) return undefined;
    const worker = new ReadWorker(this.#path);
    this.#all.add(worker);
    return worker;
  }

  /** Puts an idle worker back; one beyond KEPT_IDLE ends once idle for #idleMs. */
  #rest(worker: ReadWorker): void {
    this.#idle.push(worker);
    const timer = setTimeout(() => this.#retire(worker), this.#idleMs);
    timer.unref();
    this.#retireTimers.set(worker, timer);
  }

  /** Taken again: it no longer ends for being idle. */
  #keep(worker: ReadWorker): void {
    clearTimeout(this.#retireTimers.get(worker));
    this.#retireTimers.delete(worker);
  }

  #retire(worker: ReadWorker): void {
    this.#retireTimers.delete(worker);
    const at = this.#idle.indexOf(worker);
    if (this.#closed || at === -1) return;
    // The most recently used stay: the longest idle go first, down to KEPT_IDLE.
    if (this.#idle.length <= KEPT_IDLE) {
      this.#rest(this.#idle.splice(at, 1)[0]!);
      return;
    }
    this.#idle.splice(at, 1);
    this.#all.delete(worker);
    this.#ending.add(worker);
    worker.post({ type: 'close' });
    void worker.exited.then(() => this.#ending.delete(worker));
  }

  #release(user: string, worker: ReadWorker): void {
    this.#share.give(user);
    if (worker.failed) {
      // The thread has already ended (an uncaught error ends it): only its place is freed.
      this.#all.delete(worker);
      const waiter = this.#share.next();
      const fresh = waiter && !this.#closed ? this.#spawn() : undefined;
      if (waiter && fresh) this.#share.grant(waiter, fresh);
      else if (waiter) this.#share.putBack(waiter);
      return;
    }
    // Once closed, the worker has been told to end; it is no longer handed out.
    if (this.#closed) return;
    const waiter = this.#share.next();
    if (waiter) this.#share.grant(waiter, worker);
    else this.#rest(worker);
  }

  #runs = 0;
  /** Streams running now (from their worker's acquisition to its release or stop). */
  #streaming = 0;

  /**
   * Runs a read statement on a worker and yields its rows in chunks; the worker reads the next chunk
   * while this one is being consumed. `signal` stops it; the reason given is thrown. `user` is whom the
   * read runs for: workers are shared fairly between users (see FairShare).
   *
   * Rows asked for as JSON (`asJson`) are serialized by the worker, except while the stream is the only
   * one, its consumer waits for the worker (no chunk ready when it takes one), and this thread's event
   * loop has time to spare (SERIALIZE_HERE_WHILE_LOOP_BUSY_UNDER), in chunks of
   * PACKED_CHUNK_ROWS_AT_MOST rows or fewer: then its worker only packs them, and this thread
   * serializes them. A lone stream is as fast as its worker, which reads every row out of libsql
   * (~1.2 µs a row) and would spend ~0.3 µs more serializing it (bench (a)). Packing costs the worker
   * ~0.05 µs and this thread ~0.3 µs a row; with several streams at once the workers are no longer
   * alone in holding them back, and this thread, shared by every stream and every client, would be:
   * they are serialized where they are read. The choice is made again at every chunk taken (the
   * worker is told with its 'more'); the text is the same either way.
   */
  async *stream(
    user: string,
    read: WorkerRead,
    options: { chunkSize: number; asJson: boolean },
    signal: AbortSignal,
    stoppedError: () => unknown,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    let worker: ReadWorker;
    try {
      worker = await this.#acquire(user, signal);
    } catch {
      throw stoppedError();
    }
    let finished = false;
    this.#streaming++;
    let mayPack = options.asJson && options.chunkSize <= PACKED_CHUNK_ROWS_AT_MOST;
    // Whether the consumer found the chunk it took waiting: then the worker is not what holds the stream
    // back (the client or its socket is), and packing would only move work and memory to this thread.
    let workerAhead = false;
    const jsonForm = (): 'packed' | 'json' => {
      // Read at every chunk, whatever the rest says: a reading covers the time since the last one, so
      // one taken after a long gap would average that gap in.
      const loopHasTime = this.#loopLoad.busy() < SERIALIZE_HERE_WHILE_LOOP_BUSY_UNDER;
      return mayPack && !workerAhead && this.#streaming === 1 && loopHasTime ? 'packed' : 'json';
    };
    let form = options.asJson ? jsonForm() : 'values';
    // Answers as soon as the signal fires, whatever the worker is doing. (Not a Promise.race against
    // one long-lived promise: each race would leave a reaction on it holding that chunk's rows.)
    const nextMessage = (): Promise<WorkerMessage> =>
      new Promise<WorkerMessage>((resolve, reject) => {
        if (signal.aborted) {
          reject(stoppedError());
          return;
        }
        const onAbort = (): void => reject(stoppedError());
        signal.addEventListener('abort', onAbort, { once: true });
        worker.next().then((message) => {
          signal.removeEventListener('abort', onAbort);
          resolve(message);
        });
      });
    const expectChunk = (message: WorkerMessage): Extract<WorkerMessage, { type: 'chunk' }> => {
      if (message.type === 'error') throw new WorkerSqlError(message.code, message.message);
      if (message.type !== 'chunk') throw new RustyError('INTERNAL_ERROR', 'read worker out of step');
      return message;
    };
    const runId = ++this.#runs;
    worker.beginRun(runId);
    try {
      worker.post({
        type: 'run',
        runId,
        ...read,
        chunkSize: options.chunkSize,
        form,
        ahead: CHUNKS_AHEAD,
      });
      const first = await nextMessage();
      if (first.type === 'error') throw new WorkerSqlError(first.code, first.message);
      if (first.type !== 'columns') throw new RustyError('INTERNAL_ERROR', 'read worker out of step');
      const columns = first.columns;
      let total = 0;
      for (;;) {
        workerAhead = worker.ahead;
        const chunk = expectChunk(await nextMessage());
        if (chunk.packed && chunk.packed.text.length > PACKED_TEXT_AT_MOST) mayPack = false;
        const handed: ResultChunk =
          chunk.rows !== undefined
            ? { columns, rows: chunk.rows, done: chunk.done }
            : {
                columns,
                rows: [],
                json: {
                  text: chunk.json ?? this.#serialize(chunk.packed, chunk.count, columns.length),
                  count: chunk.count,
                },
                done: chunk.done,
              };
        total += chunk.rows !== undefined ? chunk.rows.length : chunk.count;
        if (chunk.done) {
          finished = true;
          yield { ...handed, rowsAffected: total };
          return;
        }
        // Taken: the worker may read one more chunk ahead while this one is sent, into the buffers of
        // this one if it was packed (they are read: JSON text now).
        // The form of the chunks it reads from now on is said only when it changes.
        const next = options.asJson ? jsonForm() : form;
        const change = next === form ? {} : { form: next };
        form = next;
        if (chunk.packed) {
          const spare = { kinds: chunk.packed.kinds, numbers: chunk.packed.numbers };
          worker.post({ type: 'more', runId, spare, ...change }, [
            spare.kinds.buffer as ArrayBuffer,
            spare.numbers.buffer as ArrayBuffer,
          ]);
        } else worker.post({ type: 'more', runId, ...change });
        yield handed;
      }
    } finally {
      this.#streaming--;
      if (finished) this.#release(user, worker);
      else void this.#stop(user, worker);
    }
  }

  #serialize(packed: PackedRows, count: number, width: number): string {
    this.#serializedHere++;
    return packedRowsJson(packed, count, width);
  }

  /** Stops whatever the worker runs and returns it to the pool once it says it is free. */
  async #stop(user: string, worker: ReadWorker): Promise<void> {
    const stopped = (async () => {
      for (;;) {
        const message = await worker.next();
        if (message.type === 'stopped' || message.type === 'error') return;
        if (message.type === 'chunk' && message.done) return;
      }
    })();
    worker.post({ type: 'stop', runId: worker.runId });
    await stopped;
    this.#release(user, worker);
  }

  /**
   * Asks every worker to stop its statement, close its connection and end; resolves when all have
   * ended.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      // Busy ones too: a consumer may never come back for the rest of its rows. Referenced from
      // now on: the process must not end (and tear the threads down) before they have.
      for (const worker of this.#all) {
        worker.thread.ref();
        worker.post({ type: 'close' });
      }
      this.#idle.length = 0;
      for (const timer of this.#retireTimers.values()) clearTimeout(timer);
      this.#retireTimers.clear();
      this.#share.close();
    }
    await Promise.all([...this.#all, ...this.#ending].map((worker) => worker.exited));
    this.#all.clear();
  }
}
