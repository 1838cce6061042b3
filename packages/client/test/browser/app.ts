/**
 * The page the browser tests load (bundled with esbuild, React included). `?mode=sdk` only exposes the
 * SDK as `globalThis.RustyDB` for tests that drive it with page.evaluate; otherwise it renders a React
 * app in StrictMode: the connection state, a count from useQuery, and a live table from useSubscription.
 */
import { StrictMode, createElement as h, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import * as RustyDB from '@rustydb/client';
import {
  RustyDBProvider,
  useConnectionState,
  useQuery,
  useRustyDB,
  useSubscription,
} from '@rustydb/client/react';

declare const document: { getElementById(id: string): unknown };
declare const location: { origin: string; search: string };

interface PageGlobals {
  RustyDB: typeof RustyDB;
  /** Every connection state the React app rendered, in order. */
  states: string[];
  /** The sequence of every change a plain subscription beside the hook received. */
  sequences: number[];
}

const page = globalThis as unknown as PageGlobals;
page.RustyDB = RustyDB;
page.states = [];
page.sequences = [];

const params = new URLSearchParams(location.search);

function Status() {
  const state = useConnectionState();
  useEffect(() => {
    page.states.push(state);
  }, [state]);
  return h('div', { id: 'state' }, state);
}

function Count() {
  const { rows, loading, error, refetch } = useQuery('SELECT count(*) AS n FROM items');
  return h(
    'div',
    null,
    h('span', { id: 'count' }, error ? `error: ${error.code}` : loading ? 'loading' : String(rows[0]?.n)),
    h('button', { id: 'refetch', onClick: refetch }, 'refetch'),
  );
}

/** A plain subscription beside the hook, recording the sequence of every change it is given. */
function Sequences() {
  const client = useRustyDB();
  useEffect(() => {
    const subscription = client.subscribe('items');
    void (async () => {
      try {
        for await (const event of subscription)
          if (event.type === 'change') page.sequences.push(event.sequence);
      } catch {
        // Ends with the client.
      }
    })();
    return () => void subscription.unsubscribe();
  }, [client]);
  return null;
}

function Items() {
  const { rows, status, sequence, error } = useSubscription('items');
  return h(
    'table',
    {
      id: 'items',
      'data-status': status,
      'data-sequence': String(sequence ?? ''),
      'data-error': error?.code ?? '',
    },
    h(
      'tbody',
      null,
      rows.map((row) =>
        h(
          'tr',
          { key: String(row.id), 'data-id': String(row.id) },
          h('td', null, String(row.id)),
          h('td', null, String(row.name)),
        ),
      ),
    ),
  );
}

if (params.get('mode') !== 'sdk') {
  const options = {
    url: location.origin,
    username: params.get('user') ?? 'admin',
    password: params.get('password') ?? '',
    reconnectDelay: 100,
    maxReconnectDelay: 500,
    maxReconnectAttempts: 100,
  };
  createRoot(document.getElementById('root') as never).render(
    h(StrictMode, null, h(RustyDBProvider, { options }, h(Status), h(Count), h(Items), h(Sequences))),
  );
}
