/**
 * Hooks over the client of the nearest RustyDBProvider: the client, its connection state, a query's
 * result (once, refetched on demand, or live), a live query, a live table and a live set of documents.
 *
 * The live hooks keep their data with the core's LiveTable / LiveResult / LiveCollection (O(1) work per
 * change) and render through a LiveStore (one render per frame however many changes came). Every hook
 * takes `enabled`; while false it does nothing and reports `status: 'idle'`. When the client is closed
 * and opened again, the live hooks subscribe again.
 */
import { useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import type { RustyDBClient } from '../client.ts';
import type { ConnectionState } from '../connection.ts';
import { RustyDBError } from '../errors.ts';
import { LiveCollection, type DocumentFilter, type LiveCollectionStatus } from '../live-collection.ts';
import { LiveResult } from '../live-result.ts';
import { LiveTable } from '../live-table.ts';
import type { QueryResult, SqlValue } from '../query.ts';
import type { OrderBy } from '../row-set.ts';
import type {
  Document,
  ResetEvent,
  Row,
  RowFilter,
  Subscription,
  SubscriptionStatus,
  TableSubscribeOptions,
} from '../subscriptions.ts';
import { RustyDBContext } from './context.ts';
import { LiveStore, whileOpen } from './live-store.ts';

/** A live hook's status: its subscription's, or `idle` while `enabled` is false. */
export type LiveStatus = SubscriptionStatus | 'idle';

/** The client of the nearest RustyDBProvider. Throws (INVALID_USE) outside one. */
export function useRustyDB(): RustyDBClient {
  const client = useContext(RustyDBContext);
  if (!client) throw new RustyDBError('INVALID_USE', 'useRustyDB: no RustyDBProvider above this component');
  return client;
}

/** The connection's state; the component re-renders when it changes. */
export function useConnectionState(): ConnectionState {
  const client = useRustyDB();
  return useSyncExternalStore(
    useCallback((onChange: () => void) => client.on('state', onChange), [client]),
    () => client.state,
    () => client.state,
  );
}

/** Renders from a LiveStore made by `create`, made again when `key` changes. */
function useLiveStore<S extends object>(create: () => LiveStore<S>, key: string): S {
  // The key says when the store changes: `create` itself is a new function at every render.
  const store = useMemo(create, [key]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/** A change of the sequence alone is not worth a render: the rows did not move. */
const QUIET = ['sequence'] as const;

/** A store that never opens anything: what a disabled hook renders from. */
function idleStore<S extends object>(state: S): LiveStore<S> {
  return new LiveStore(state, () => () => {});
}

// ---- useSubscription ----------------------------------------------------------------------------

export interface UseSubscriptionOptions {
  filter?: RowFilter | undefined;
  events?: TableSubscribeOptions['events'];
  /** Columns identifying a row. Default: the table's primary key, as the server reports it. */
  keyColumns?: readonly string[] | undefined;
  /** Keep the rows sorted by these columns (`{ created_at: 'desc' }`); default: arrival order. */
  order?: OrderBy | undefined;
  /** Only the first `limit` rows (in order). Every matching row is still received and kept. */
  limit?: number | undefined;
  /** False: do not subscribe (yet); status is `idle`. Default true. */
  enabled?: boolean | undefined;
}

export interface UseSubscriptionResult<R = Row> {
  /** The table's (filtered) rows, current as of `sequence`. */
  rows: readonly R[];
  columns: readonly string[];
  sequence: number | undefined;
  /** `active` while attached; `disconnected` while the client reconnects (rows stay); `idle` when disabled. */
  status: LiveStatus;
  error: RustyDBError | undefined;
  /** The last reset (history was lost and the rows were reloaded), if any. */
  lastReset: ResetEvent | undefined;
}

/**
 * A live table: the rows of `table` (optionally filtered, sorted and limited), loaded with a snapshot
 * and kept current by applying every change. Across reconnects the subscription resumes from its last
 * sequence, so no change is missed or applied twice; if the server no longer has that history, the
 * rows are reloaded and `lastReset` says so.
 */
export function useSubscription<R extends object = Row>(
  table: string,
  options: UseSubscriptionOptions = {},
): UseSubscriptionResult<R> {
  const client = useRustyDB();
  const enabled = options.enabled ?? true;
  const { filter, events, keyColumns, order, limit } = options;
  const key = JSON.stringify([table, filter, events, keyColumns, order, limit, enabled]);
  return useLiveStore(() => {
    const empty: UseSubscriptionResult<R> = {
      rows: [],
      columns: [],
      sequence: undefined,
      status: enabled ? 'subscribing' : 'idle',
      error: undefined,
      lastReset: undefined,
    };
    if (!enabled) return idleStore(empty);
    return new LiveStore(
      empty,
      (store) => {
        const live = new LiveTable<R>({ keyColumns, order, limit });
        let status: LiveStatus = 'subscribing';
        let error: RustyDBError | undefined;
        let lastReset: ResetEvent | undefined;
        const publish = (): void =>
          store.update(() => ({
            rows: live.rows,
            columns: live.columns,
            sequence: live.sequence,
            status,
            error,
            lastReset,
          }));
        return whileOpen(client, () => {
          const subscription = client.subscribe<R>(table, {
            snapshot: true,
            ...(filter ? { filter } : {}),
            ...(events ? { events } : {}),
          });
          status = subscription.status;
          error = undefined;
          return follow(subscription, {
            event: (event) => {
              if (event.type === 'reset') lastReset = event;
              live.apply(event);
            },
            status: (next) => (status = next),
            error: (failure) => (error = failure),
            publish,
          });
        });
      },
      QUIET,
    );
  }, key);
}

/**
 * Follows one subscription for a hook: each event, status and error is handed to its callback and then
 * published to React. Returns the teardown that stops listening and ends the subscription.
 */
function follow<E>(
  subscription: Subscription<E>,
  on: {
    event(event: E): void;
    status(next: SubscriptionStatus): void;
    error(failure: RustyDBError): void;
    publish(): void;
  },
): () => void {
  const offs = [
    subscription.on('event', (event) => {
      on.event(event);
      on.publish();
    }),
    subscription.on('status', (next) => {
      on.status(next);
      on.publish();
    }),
    subscription.on('error', (failure) => {
      on.error(failure);
      on.publish();
    }),
  ];
  return () => {
    for (const off of offs) off();
    void subscription.unsubscribe();
  };
}

// ---- useLiveQuery -------------------------------------------------------------------------------

export interface UseLiveQueryOptions {
  /** Keep the rows sorted by these columns; default: the result's order, added rows last. */
  order?: OrderBy | undefined;
  /** Only the first `limit` rows (in order). */
  limit?: number | undefined;
  /** False: do not subscribe (yet); status is `idle`. Default true. */
  enabled?: boolean | undefined;
}

export interface UseLiveQueryResult<R = Row> {
  /** The query's result, kept current. Empty until the first result. */
  rows: readonly R[];
  columns: readonly string[];
  sequence: number | undefined;
  /** False once the first result has arrived. */
  loading: boolean;
  status: LiveStatus;
  error: RustyDBError | undefined;
}

/**
 * A live query: the result of a read statement, kept current from the server's diffs. `params` are
 * compared by value. After a reconnect the whole result comes again (a live query has no history).
 */
export function useLiveQuery<R extends object = Row>(
  sql: string,
  params: readonly SqlValue[] = [],
  options: UseLiveQueryOptions = {},
): UseLiveQueryResult<R> {
  return useLiveQueryFrom<R>(sql, params, options, 0);
}

/** useLiveQuery, subscribing afresh whenever `generation` moves (a refetch). */
function useLiveQueryFrom<R extends object>(
  sql: string,
  params: readonly SqlValue[],
  options: UseLiveQueryOptions,
  generation: number,
): UseLiveQueryResult<R> {
  const client = useRustyDB();
  const enabled = options.enabled ?? true;
  const { order, limit } = options;
  const key = JSON.stringify([sql, params, order, limit, enabled, generation]);
  return useLiveStore(() => {
    const empty: UseLiveQueryResult<R> = {
      rows: [],
      columns: [],
      sequence: undefined,
      loading: enabled,
      status: enabled ? 'subscribing' : 'idle',
      error: undefined,
    };
    if (!enabled) return idleStore(empty);
    return new LiveStore(
      empty,
      (store) => {
        const live = new LiveResult<R>({ order, limit });
        let status: LiveStatus = 'subscribing';
        let error: RustyDBError | undefined;
        let loaded = false;
        const publish = (): void =>
          store.update(() => ({
            rows: live.rows,
            columns: live.columns,
            sequence: live.sequence,
            loading: !loaded && error === undefined,
            status,
            error,
          }));
        return whileOpen(client, () => {
          const subscription = client.subscribe<R>({ query: sql, params });
          status = subscription.status;
          error = undefined;
          return follow(subscription, {
            event: (event) => {
              loaded = true;
              live.apply(event);
            },
            status: (next) => (status = next),
            error: (failure) => (error = failure),
            publish,
          });
        });
      },
      QUIET,
    );
  }, key);
}

// ---- useQuery -----------------------------------------------------------------------------------

export interface UseQueryOptions {
  /** False: do not run (yet); status is `idle`. Default true. */
  enabled?: boolean | undefined;
  /** Request timeout, ms (not for `live`). */
  timeout?: number | undefined;
  /** Keep the result current as a live query instead of running it once. Default false. */
  live?: boolean | undefined;
}

export type QueryStatus = 'idle' | 'loading' | 'success' | 'error';

export interface UseQueryResult<R = Row> {
  /** The whole result, once there is one (kept while a refetch runs). */
  data: QueryResult<R> | undefined;
  /** `data.rows`: objects keyed by column, typed `R`. Empty until there is data. */
  rows: readonly R[];
  error: RustyDBError | undefined;
  /** True while the query runs (the first time, or a refetch) or a live query waits for its result. */
  loading: boolean;
  status: QueryStatus;
  /** Runs the query again (a live query subscribes again and gets a fresh result). */
  refetch: () => void;
}

/**
 * A query's result. Runs when the component mounts and again whenever `sql` or `params` change
 * (compared by value) or `refetch()` is called; a running query is cancelled when they change or the
 * component unmounts. With `live: true` it is a live query instead: the result stays current by itself.
 */
export function useQuery<R extends object = Row>(
  sql: string,
  params: readonly SqlValue[] = [],
  options: UseQueryOptions = {},
): UseQueryResult<R> {
  const enabled = options.enabled ?? true;
  const live = options.live ?? false;
  const [generation, setGeneration] = useState(0);
  const refetch = useCallback(() => setGeneration((g) => g + 1), []);
  // Both hooks are always called (the rules of hooks); one of them is idle.
  const once = useQueryOnce<R>(sql, params, enabled && !live, options.timeout, generation);
  const kept = useLiveQueryFrom<R>(sql, params, { enabled: enabled && live }, generation);
  const data = useMemo<QueryResult<R> | undefined>(
    () =>
      kept.loading || kept.status === 'idle'
        ? undefined
        : {
            columns: [...kept.columns],
            rows: [...kept.rows],
            rowsAffected: kept.rows.length,
            lastInsertId: undefined,
          },
    [kept],
  );
  if (!live) return { ...once, refetch };
  return {
    data,
    rows: kept.rows,
    error: kept.error,
    loading: kept.loading,
    status: !enabled ? 'idle' : kept.error ? 'error' : kept.loading ? 'loading' : 'success',
    refetch,
  };
}

function useQueryOnce<R extends object>(
  sql: string,
  params: readonly SqlValue[],
  enabled: boolean,
  timeout: number | undefined,
  generation: number,
): Omit<UseQueryResult<R>, 'refetch'> {
  const client = useRustyDB();
  const paramsKey = JSON.stringify(params);
  const [state, setState] = useState<{
    data: QueryResult<R> | undefined;
    error: RustyDBError | undefined;
    loading: boolean;
  }>({
    data: undefined,
    error: undefined,
    loading: enabled,
  });
  useEffect(() => {
    if (!enabled) {
      setState((s) => (s.loading ? { ...s, loading: false } : s));
      return undefined;
    }
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    client.query<R>(sql, JSON.parse(paramsKey) as SqlValue[], { signal: abort.signal, timeout }).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, error: undefined, loading: false });
      },
      (error: RustyDBError) => {
        if (!abort.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => abort.abort();
  }, [client, sql, paramsKey, enabled, generation, timeout]);
  const rows = useMemo(() => state.data?.rows ?? [], [state.data]);
  const status: QueryStatus = !enabled
    ? 'idle'
    : state.loading
      ? 'loading'
      : state.error
        ? 'error'
        : 'success';
  return { ...state, rows, status };
}

// ---- useWatch -----------------------------------------------------------------------------------

export interface UseWatchOptions {
  /** False: do not watch (yet); status is `idle`. Default true. */
  enabled?: boolean | undefined;
}

export interface UseWatchResult<D = Document> {
  /** The collection's documents that match the filter, kept current. */
  documents: readonly D[];
  /** True until the documents have been loaded. */
  loading: boolean;
  status: LiveCollectionStatus | 'idle';
  error: RustyDBError | undefined;
}

/**
 * The documents of `collection` that match `filter` (MongoDB-style, as `find` takes it), loaded once and
 * kept current from the collection's change stream ([LiveCollection](../live-collection.ts)).
 */
export function useWatch<D extends object = Document>(
  collection: string,
  filter: DocumentFilter = {},
  options: UseWatchOptions = {},
): UseWatchResult<D> {
  const client = useRustyDB();
  const enabled = options.enabled ?? true;
  const key = JSON.stringify([collection, filter, enabled]);
  return useLiveStore(() => {
    const empty: UseWatchResult<D> = {
      documents: [],
      loading: enabled,
      status: enabled ? 'loading' : 'idle',
      error: undefined,
    };
    if (!enabled) return idleStore(empty);
    return new LiveStore(empty, (store) =>
      whileOpen(client, () => {
        const live = new LiveCollection<D>(client, collection, filter);
        const publish = (): void =>
          store.update(() => ({
            documents: live.documents,
            loading: live.status === 'loading' && live.error === undefined,
            status: live.status,
            error: live.error,
          }));
        const offs = [live.on('change', publish), live.on('status', publish), live.on('error', publish)];
        void live.start();
        return () => {
          for (const off of offs) off();
          void live.close();
        };
      }),
    );
  }, key);
}
