/**
 * The page the React hook tests load (bundled with esbuild). `?case=` picks what it renders; each
 * component writes its hook's state into the DOM (data-status, rows) and counts its renders in
 * `globalThis.renders`, so that the test reads what a user would see.
 */
import { StrictMode, createElement as h, useState, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import type { ClientOptions } from '@rustydb/client';
import {
  RustyDBProvider,
  useConnectionState,
  useLiveQuery,
  useQuery,
  useRustyDB,
  useSubscription,
  useWatch,
} from '@rustydb/client/react';

declare const document: { getElementById(id: string): unknown };
declare const location: { origin: string; search: string };

interface Item {
  id: number;
  name: string;
}

interface Note {
  _id: string;
  title: string;
  done: boolean;
}

const page = globalThis as unknown as { renders: Record<string, number> };
page.renders = {};
const rendered = (name: string): void => {
  page.renders[name] = (page.renders[name] ?? 0) + 1;
};

const params = new URLSearchParams(location.search);

/** A list of rows as `<li data-key=…>` items, inside an element carrying the hook's status. */
function List(props: {
  id: string;
  status: string;
  items: readonly (readonly string[])[];
  extra?: ReactNode;
}) {
  return h(
    'div',
    { id: props.id, 'data-status': props.status, 'data-count': String(props.items.length) },
    h(
      'ul',
      null,
      props.items.map(([key = '', text]) => h('li', { key, 'data-key': key }, text)),
    ),
    props.extra,
  );
}

function State() {
  return h('div', { id: 'state' }, useConnectionState());
}

/** Every hook disabled until the button is pressed. */
function Idle() {
  const [enabled, setEnabled] = useState(false);
  const sub = useSubscription<Item>('items', { enabled });
  const live = useLiveQuery<Item>('SELECT id, name FROM items', [], { enabled });
  const query = useQuery<{ n: number }>('SELECT count(*) AS n FROM items', [], { enabled });
  const watch = useWatch<Note>('notes', {}, { enabled });
  return h(
    'div',
    null,
    h('button', { id: 'enable', onClick: () => setEnabled(true) }, 'enable'),
    h(List, { id: 'sub', status: sub.status, items: sub.rows.map((r) => [String(r.id), r.name]) }),
    h(List, { id: 'live', status: live.status, items: live.rows.map((r) => [String(r.id), r.name]) }),
    h(List, { id: 'query', status: query.status, items: query.rows.map((r) => ['n', String(r.n)]) }),
    h(List, { id: 'watch', status: watch.status, items: watch.documents.map((d) => [d._id, d.title]) }),
  );
}

/** A live query, a live count with useQuery({ live }), and a count fetched once (with refetch). */
function Live() {
  rendered('live');
  const live = useLiveQuery<Item>('SELECT id, name FROM items WHERE id > ? ORDER BY id', [0]);
  const count = useQuery<{ n: number }>('SELECT count(*) AS n FROM items', [], { live: true });
  const once = useQuery<{ n: number }>('SELECT count(*) AS n FROM items');
  return h(
    'div',
    null,
    h(List, { id: 'live', status: live.status, items: live.rows.map((r) => [String(r.id), r.name]) }),
    h('span', { id: 'live-count', 'data-status': count.status }, String(count.rows[0]?.n ?? '')),
    h('span', { id: 'once-count', 'data-status': once.status }, String(once.rows[0]?.n ?? '')),
    h('button', { id: 'refetch', onClick: once.refetch }, 'refetch'),
  );
}

/** The first three items by name, kept current. */
function Ordered() {
  rendered('ordered');
  const { rows, status } = useSubscription<Item>('items', { order: { name: 'asc' }, limit: 3 });
  return h(List, { id: 'ordered', status, items: rows.map((r) => [String(r.id), r.name]) });
}

/** The notes not done yet. */
function Notes() {
  const { documents, status, error } = useWatch<Note>('notes', { done: false });
  return h(List, {
    id: 'notes',
    status: error ? `error: ${error.code}` : status,
    items: documents.map((d) => [d._id, d.title]),
  });
}

/** A live table with buttons that close and open the client again. */
function Reopen() {
  const client = useRustyDB();
  const { rows, status } = useSubscription<Item>('items');
  return h(
    'div',
    null,
    h('button', { id: 'close', onClick: () => void client.close() }, 'close'),
    h('button', { id: 'open', onClick: () => client.open() }, 'open'),
    h(List, { id: 'items', status, items: rows.map((r) => [String(r.id), r.name]) }),
  );
}

const CASES: Record<string, () => ReactNode> = {
  idle: () => h(Idle),
  live: () => h(Live),
  ordered: () => h(Ordered),
  notes: () => h(Notes),
  reopen: () => h(Reopen),
};

const options: ClientOptions = {
  url: location.origin,
  username: 'admin',
  password: params.get('password') ?? '',
};
const render = CASES[params.get('case') ?? ''];
if (render) {
  createRoot(document.getElementById('root') as never).render(
    h(StrictMode, null, h(RustyDBProvider, { options }, h(State), render())),
  );
}
