/**
 * Hooks over the client of the nearest RustyDBProvider: the client itself, its connection state, a
 * query's result, and a live table kept current by a subscription that survives reconnects.
 */
import { useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import type { RustyDBClient } from '../client.ts';
import type { ConnectionState } from '../connection.ts';
import type { RustyDBError } from '../errors.ts';
import { LiveTable } from '../live-table.ts';
import type { QueryResult, SqlValue } from '../query.ts';
import type { ObjectRow } from '../rows.ts';
import type {
  ResetEvent,
  Row,
  RowFilter,
  SubscriptionStatus,
  TableSubscribeOptions,
} from '../subscriptions.ts';
import { RustyDBContext } from './context.ts';

/** The client of the nearest RustyDBProvider. Throws outside one. */
export function useRustyDB(): RustyDBClient {
  const client = useContext(RustyDBContext);
  if (!client) throw new Error('useRustyDB: no RustyDBProvider above this component');
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

export interface UseQueryOptions {
  /** False: do not run (yet). Default true. */
  enabled?: boolean | undefined;
  /** Request timeout, ms. */
  timeout?: number | undefined;
}

export interface UseQueryResult<R = ObjectRow> {
  /** The whole result, once there is one (kept while a refetch runs). */
  data: QueryResult<R> | undefined;
  /** `data.rows`: objects keyed by column, typed `R`. Empty until there is data. */
  rows: R[];
  error: RustyDBError | undefined;
  loading: boolean;
  /** Runs the query again. */
  refetch: () => void;
}

/**
 * Runs a query when the component mounts and again whenever `sql` or `params` change (compared by
 * value). A running query is cancelled when they change or the component unmounts.
 */
export function useQuery<R extends object = ObjectRow>(
  sql: string,
  params: readonly SqlValue[] = [],
  options: UseQueryOptions = {},
): UseQueryResult<R> {
  const client = useRustyDB();
  const enabled = options.enabled ?? true;
  const paramsKey = JSON.stringify(params);
  const [generation, setGeneration] = useState(0);
  const [state, setState] = useState<{
    data: QueryResult<R> | undefined;
    error: RustyDBError | undefined;
    loading: boolean;
  }>({ data: undefined, error: undefined, loading: enabled });

  useEffect(() => {
    if (!enabled) {
      setState((s) => ({ ...s, loading: false }));
      return undefined;
    }
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    client
      .query<R>(sql, JSON.parse(paramsKey) as SqlValue[], { signal: abort.signal, timeout: options.timeout })
      .then(
        (data) => {
          if (!abort.signal.aborted) setState({ data, error: undefined, loading: false });
        },
        (error: RustyDBError) => {
          if (!abort.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
        },
      );
    return () => abort.abort();
  }, [client, sql, paramsKey, enabled, generation, options.timeout]);

  const refetch = useCallback(() => setGeneration((g) => g + 1), []);
  const { data } = state;
  const rows = useMemo(() => data?.rows ?? [], [data]);
  return { ...state, rows, refetch };
}

export interface UseSubscriptionOptions {
  filter?: RowFilter | undefined;
  events?: TableSubscribeOptions['events'];
  /** Columns identifying a row. Default: the table's primary key, as the server reports it. */
  keyColumns?: readonly string[] | undefined;
  /** False: do not subscribe (yet). Default true. */
  enabled?: boolean | undefined;
}

export interface UseSubscriptionResult {
  /** The table's (filtered) rows, current as of `sequence`. */
  rows: readonly Row[];
  columns: readonly string[];
  sequence: number | undefined;
  /** `active` while attached; `disconnected` while the client reconnects (rows stay). */
  status: SubscriptionStatus;
  error: RustyDBError | undefined;
  /** The last reset (history was lost and the rows were reloaded), if any. */
  lastReset: ResetEvent | undefined;
}

/**
 * A live table: the rows of `table` (optionally filtered), loaded with a snapshot and kept current
 * by applying every change. Across reconnects the subscription resumes from its last sequence, so
 * no change is missed or applied twice; if the server no longer has that history, the rows are
 * reloaded and `lastReset` says so.
 */
export function useSubscription(table: string, options: UseSubscriptionOptions = {}): UseSubscriptionResult {
  const client = useRustyDB();
  const enabled = options.enabled ?? true;
  const filterKey = JSON.stringify(options.filter ?? null);
  const eventsKey = JSON.stringify(options.events ?? null);
  const keyColumnsKey = JSON.stringify(options.keyColumns ?? null);
  const [state, setState] = useState<UseSubscriptionResult>({
    rows: [],
    columns: [],
    sequence: undefined,
    status: 'subscribing',
    error: undefined,
    lastReset: undefined,
  });

  useEffect(() => {
    if (!enabled) return undefined;
    const filter = JSON.parse(filterKey) as RowFilter | null;
    const events = JSON.parse(eventsKey) as TableSubscribeOptions['events'] | null;
    const keyColumns = JSON.parse(keyColumnsKey) as string[] | null;
    const live = new LiveTable(keyColumns ? { keyColumns } : {});
    const subscription = client.subscribe(table, {
      snapshot: true,
      ...(filter ? { filter } : {}),
      ...(events ? { events } : {}),
    });
    let active = true;
    setState({
      rows: [],
      columns: [],
      sequence: undefined,
      status: subscription.status,
      error: undefined,
      lastReset: undefined,
    });
    const offStatus = subscription.on('status', (status) => {
      if (active) setState((s) => ({ ...s, status }));
    });
    void (async () => {
      try {
        for await (const event of subscription) {
          if (!active) break;
          const changed = live.apply(event);
          if (event.type === 'reset') setState((s) => ({ ...s, lastReset: event }));
          else if (changed)
            setState((s) => ({ ...s, rows: live.rows, columns: live.columns, sequence: live.sequence }));
          else setState((s) => ({ ...s, sequence: live.sequence }));
        }
      } catch (error) {
        if (active) setState((s) => ({ ...s, error: error as RustyDBError, status: 'ended' }));
      }
    })();
    return () => {
      active = false;
      offStatus();
      void subscription.unsubscribe();
    };
  }, [client, table, filterKey, eventsKey, keyColumnsKey, enabled]);

  return state;
}
