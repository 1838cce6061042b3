/**
 * The documents of a collection that match a filter, kept current: loaded with a `find`, then moved
 * by the collection's change stream (which resumes across reconnects without a gap).
 *
 * Whether a changed document matches is decided by the server, with the same filter language and the
 * same privileges as `find`: the ids changed in a burst are checked with one `find` of
 * `{ $and: [filter, { _id: { $in: ids } }] }`, one at a time, so the last answer for an id is always
 * the newest. Deletes need no check, and without a filter the change events' documents are used as
 * they are (`fullDocument: 'updateLookup'`). Events that arrive while the first `find` runs are
 * checked after it, so nothing that happened in between is lost.
 */
import type { RustyDBClient } from './client.ts';
import { Emitter } from './emitter.ts';
import { RustyDBError } from './errors.ts';
import { RowSet, objectField } from './row-set.ts';
import type { ChangeStream, Document, SubscriptionStatus } from './subscriptions.ts';

/** A MongoDB-style filter, as `find` takes it (docs/documents.md). */
export type DocumentFilter = Record<string, unknown>;

export type LiveCollectionStatus = 'loading' | SubscriptionStatus;

export interface LiveCollectionEvents extends Record<string, unknown> {
  /** The documents changed (read `documents`). */
  change: void;
  status: LiveCollectionStatus;
  error: RustyDBError;
}

/** Ids checked by one `find`. */
const CHECK_BATCH = 500;

export class LiveCollection<D extends object = Document> {
  readonly collection: string;
  readonly filter: DocumentFilter;
  readonly #client: RustyDBClient;
  readonly #events = new Emitter<LiveCollectionEvents>();
  readonly #set = new RowSet<D>(objectField);
  /** Ids changed since they were last checked, and their ids as the server gave them. */
  readonly #pending = new Map<string, unknown>();
  #stream: ChangeStream<D> | undefined;
  #loaded = false;
  #checking = false;
  #closed = false;
  #status: LiveCollectionStatus = 'loading';
  #error: RustyDBError | undefined;

  constructor(client: RustyDBClient, collection: string, filter: DocumentFilter = {}) {
    this.#client = client;
    this.collection = collection;
    this.filter = filter;
  }

  /** The matching documents: a new array after each change, else the same one. */
  get documents(): readonly D[] {
    return this.#set.rows;
  }

  get status(): LiveCollectionStatus {
    return this.#status;
  }

  get error(): RustyDBError | undefined {
    return this.#error;
  }

  /** Bumped by every change of the documents. */
  get version(): number {
    return this.#set.version;
  }

  on<K extends keyof LiveCollectionEvents>(
    event: K,
    listener: (value: LiveCollectionEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** Starts watching, then loads the documents. Resolves once they are loaded. */
  async start(): Promise<void> {
    const stream = this.#client.watch<D>(this.collection, { fullDocument: 'updateLookup' });
    this.#stream = stream;
    stream.on('change', (event) => {
      const id = event.documentKey?._id;
      if (event.operationType === 'drop' || event.operationType === 'invalidate') {
        this.#set.clear();
        this.#changed();
        return;
      }
      if (id === undefined) return;
      if (event.operationType === 'delete') {
        this.#pending.delete(keyOf(id));
        if (this.#set.delete(keyOf(id))) this.#changed();
        return;
      }
      if (this.#loaded && this.#unfiltered && !this.#checking) {
        this.#apply(id, event.fullDocument);
        return;
      }
      this.#pending.set(keyOf(id), id);
      void this.#check();
    });
    // History was lost: what changed meanwhile is unknown, so everything is loaded again.
    stream.on('reset', () => void this.#load());
    stream.on('status', (status) => {
      if (this.#loaded || status === 'ended') this.#setStatus(status);
    });
    stream.on('error', (error) => this.#fail(error));
    try {
      await stream.ready();
      await this.#load();
    } catch (err) {
      this.#fail(toError(err));
    }
  }

  /** Stops watching. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#stream?.unsubscribe();
  }

  get #unfiltered(): boolean {
    return Object.keys(this.filter).length === 0;
  }

  async #load(): Promise<void> {
    const documents = await this.#find(this.filter);
    if (this.#closed) return;
    this.#set.replace(documents.map((doc) => [keyOf((doc as { _id?: unknown })._id), doc]));
    this.#loaded = true;
    this.#changed();
    if (this.#stream && this.#stream.status !== 'ended') this.#setStatus(this.#stream.status);
    await this.#check();
  }

  /** Asks the server which of the changed documents match now; one check at a time. */
  async #check(): Promise<void> {
    if (!this.#loaded || this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      while (this.#pending.size > 0 && !this.#closed) {
        const batch = [...this.#pending].slice(0, CHECK_BATCH);
        for (const [key] of batch) this.#pending.delete(key);
        const ids = batch.map(([, id]) => id);
        const filter = this.#unfiltered
          ? { _id: { $in: ids } }
          : { $and: [this.filter, { _id: { $in: ids } }] };
        const found = new Map(
          (await this.#find(filter)).map((doc) => [keyOf((doc as { _id?: unknown })._id), doc]),
        );
        if (this.#closed) return;
        for (const [key] of batch) {
          const doc = found.get(key);
          if (doc) this.#set.set(key, doc);
          else this.#set.delete(key);
        }
        this.#changed();
      }
    } catch (err) {
      this.#fail(toError(err));
    } finally {
      this.#checking = false;
    }
  }

  #apply(id: unknown, doc: D | undefined): void {
    const key = keyOf(id);
    if (doc) this.#set.set(key, doc);
    else this.#set.delete(key);
    this.#changed();
  }

  #find(filter: DocumentFilter): Promise<D[]> {
    const path = `/api/v1/documents/collections/${encodeURIComponent(this.collection)}/find`;
    return this.#client.request<{ documents: D[] }>(path, { body: { filter } }).then((r) => r.documents);
  }

  #changed(): void {
    this.#events.emit('change', undefined);
  }

  #setStatus(status: LiveCollectionStatus): void {
    if (this.#status === status || this.#status === 'ended') return;
    this.#status = status;
    this.#events.emit('status', status);
  }

  #fail(error: RustyDBError): void {
    if (this.#closed) return;
    this.#error = error;
    this.#events.emit('error', error);
    this.#setStatus('ended');
    void this.#stream?.unsubscribe();
  }
}

function keyOf(id: unknown): string {
  return JSON.stringify(id ?? null);
}

function toError(err: unknown): RustyDBError {
  return err instanceof RustyDBError
    ? err
    : new RustyDBError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err), { cause: err });
}
