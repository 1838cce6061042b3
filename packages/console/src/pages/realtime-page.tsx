/**
 * The realtime inspector: open a table subscription, a live query or a document change stream and
 * watch its events arrive as a log with their sequences and timestamps. It runs on a connection of
 * its own, which can be dropped and resumed: the subscription attaches again after the last sequence
 * (or resume token) it delivered, so the changes committed meanwhile arrive, none twice.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { RustyDBClient, type ResumeToken } from '@rustydb/client';
import type { PageProps } from '../app.tsx';
import { ErrorBox } from '../lib/errors.tsx';
import { useCatalog } from '../lib/use-catalog.ts';
import type { Session } from '../lib/session.ts';

type Kind = 'table' | 'live' | 'watch';
const MAX_EVENTS = 2000;

interface LoggedEvent {
  n: number;
  received: string;
  /** The change-log sequence (tables, live queries) or the event's cluster time (change streams). */
  sequence: string;
  kind: string;
  committed: string;
  payload: string;
}

/** Where a resumed subscription starts. */
interface Position {
  sequence?: number;
  token?: ResumeToken;
}

/** A connection for the inspector alone, with the session's token (kept fresh by the session's client). */
function inspectorClient(session: Session): RustyDBClient {
  return new RustyDBClient({
    token: session.client.auth.current?.token,
    refreshToken: async () => {
      const token = await session.client.auth.token();
      return { token, expiresAt: session.client.auth.current?.expiresAt };
    },
  });
}

export default function RealtimePage({ session }: PageProps) {
  const catalog = useCatalog(session.client);
  const [kind, setKind] = useState<Kind>('table');
  const [table, setTable] = useState('');
  const [query, setQuery] = useState('SELECT * FROM ');
  const [collection, setCollection] = useState('');
  const [collections, setCollections] = useState<string[]>([]);
  const [events, setEvents] = useState<LoggedEvent[]>([]);
  const [state, setState] = useState<'idle' | 'running' | 'disconnected'>('idle');
  const [error, setError] = useState<unknown>();
  const client = useRef<RustyDBClient>();
  const position = useRef<Position>({});
  const counter = useRef(0);

  useEffect(() => {
    session.client.request<{ collections: string[] }>('/api/v1/documents/collections').then(
      (d) => setCollections(d.collections),
      () => setCollections([]),
    );
  }, [session]);
  useEffect(() => {
    if (!table && catalog.tables?.[0]) setTable(catalog.tables[0].name);
  }, [catalog.tables]);
  useEffect(() => () => void client.current?.close(), []);

  const log = (entry: Omit<LoggedEvent, 'n' | 'received'>): void => {
    const event = { ...entry, n: ++counter.current, received: new Date().toISOString() };
    setEvents((list) => [event, ...list].slice(0, MAX_EVENTS));
  };

  const start = async (resume: boolean): Promise<void> => {
    setError(undefined);
    await client.current?.close();
    if (!resume) {
      position.current = {};
      setEvents([]);
      counter.current = 0;
    }
    const c = inspectorClient(session);
    client.current = c;
    setState('running');
    const at = position.current;
    if (resume) {
      log({
        sequence: at.sequence !== undefined ? String(at.sequence) : at.token ? at.token._data : '',
        kind: 'resumed',
        committed: '',
        payload:
          kind === 'live'
            ? 'a live query starts from a fresh result'
            : `resuming after ${at.sequence !== undefined ? `sequence ${at.sequence}` : 'the last resume token'}`,
      });
    }
    try {
      if (kind === 'table') {
        const sub = c.subscribe(table, at.sequence !== undefined ? { since: at.sequence } : {});
        sub.on('subscribed', ({ sequence }) => {
          if (position.current.sequence === undefined) position.current = { sequence };
          log({ sequence: String(sequence), kind: 'subscribed', committed: '', payload: `table ${table}` });
        });
        for await (const e of sub) {
          if (e.type === 'change') {
            position.current = { sequence: e.sequence };
            log({
              sequence: String(e.sequence),
              kind: e.op,
              committed: e.timestamp,
              payload: JSON.stringify({ key: e.key, row: e.row, old_row: e.oldRow }),
            });
          } else if (e.type === 'reset') {
            log({
              sequence: String(e.sequence),
              kind: 'reset',
              committed: '',
              payload: `${e.reason}; oldest resumable ${e.oldestResumable}`,
            });
          } else {
            position.current = { sequence: e.sequence };
            log({
              sequence: String(e.sequence),
              kind: 'snapshot',
              committed: '',
              payload: `${e.rows.length} rows`,
            });
          }
        }
      } else if (kind === 'live') {
        const sub = c.subscribe({ query });
        for await (const e of sub) {
          position.current = { sequence: e.sequence };
          log({
            sequence: String(e.sequence),
            kind: e.type,
            committed: '',
            payload:
              e.type === 'result'
                ? JSON.stringify({ columns: e.columns, rows: e.rows })
                : JSON.stringify({ added: e.added, removed: e.removed, changed: e.changed }),
          });
        }
      } else {
        const stream = c.watch(collection, at.token ? { resumeAfter: at.token } : {});
        for await (const e of stream) {
          if (e.operationType === 'reset') {
            log({ sequence: String(e.sequence), kind: 'reset', committed: '', payload: e.reason });
            continue;
          }
          position.current = { token: e._id };
          log({
            sequence: e.clusterTime !== undefined ? String(e.clusterTime) : e._id._data,
            kind: e.operationType,
            committed: e.wallTime ?? '',
            payload: JSON.stringify({
              documentKey: e.documentKey,
              fullDocument: e.fullDocument,
              updateDescription: e.updateDescription,
            }),
          });
        }
      }
    } catch (err) {
      // Closing the inspector's own connection ends the loop with CLIENT_CLOSED: that is the point.
      if (client.current === c) {
        setError(err);
        setState('idle');
      }
    }
  };

  const disconnect = async (): Promise<void> => {
    const c = client.current;
    client.current = undefined;
    setState('disconnected');
    const at = position.current;
    log({
      sequence: at.sequence !== undefined ? String(at.sequence) : (at.token?._data ?? ''),
      kind: 'disconnected',
      committed: '',
      payload: 'connection closed; changes committed now are delivered on resume',
    });
    await c?.close();
  };

  const stop = async (): Promise<void> => {
    const c = client.current;
    client.current = undefined;
    setState('idle');
    await c?.close();
  };

  const ready = kind === 'table' ? !!table : kind === 'live' ? query.trim().length > 7 : !!collection;
  return (
    <div class="page-fill">
      <h1>Realtime inspector</h1>
      <form
        class="toolbar"
        aria-label="What to inspect"
        onSubmit={(e) => {
          e.preventDefault();
          void start(false);
        }}
      >
        <label>
          Source
          <select
            aria-label="Source"
            value={kind}
            onChange={(e) => setKind((e.target as HTMLSelectElement).value as Kind)}
          >
            <option value="table">Table subscription</option>
            <option value="live">Live query</option>
            <option value="watch">Document change stream</option>
          </select>
        </label>
        {kind === 'table' ? (
          <label>
            Table
            <select
              aria-label="Table"
              value={table}
              onChange={(e) => setTable((e.target as HTMLSelectElement).value)}
            >
              {(catalog.tables ?? [])
                .filter((t) => t.kind === 'table')
                .map((t) => (
                  <option key={t.name}>{t.name}</option>
                ))}
            </select>
          </label>
        ) : null}
        {kind === 'live' ? (
          <label>
            Query
            <input
              class="mono"
              size={50}
              value={query}
              onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
            />
          </label>
        ) : null}
        {kind === 'watch' ? (
          <label>
            Collection
            <select
              aria-label="Collection"
              value={collection}
              onChange={(e) => setCollection((e.target as HTMLSelectElement).value)}
            >
              <option value="">(choose)</option>
              {collections.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </label>
        ) : null}
        <button type="submit" class="primary" disabled={!ready}>
          Start
        </button>
        <button type="button" disabled={state !== 'running'} onClick={() => void disconnect()}>
          Drop connection
        </button>
        <button type="button" disabled={state !== 'disconnected'} onClick={() => void start(true)}>
          Reconnect and resume
        </button>
        <button type="button" disabled={state === 'idle'} onClick={() => void stop()}>
          Stop
        </button>
        <span role="status" data-testid="inspector-state">
          {state}
        </span>
      </form>
      <ErrorBox error={error} />
      <div class="log">
        <table class="data" aria-label="Events, newest first">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Received</th>
              <th scope="col">Sequence</th>
              <th scope="col">Event</th>
              <th scope="col">Committed</th>
              <th scope="col">Payload</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.n} data-event={e.kind}>
                <td>{e.n}</td>
                <td>{new Date(e.received).toLocaleTimeString()}</td>
                <td class="mono">{e.sequence}</td>
                <td>{e.kind}</td>
                <td>{e.committed ? new Date(e.committed).toLocaleTimeString() : ''}</td>
                <td class="payload mono">{e.payload}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
