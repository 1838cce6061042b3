/**
 * Documents: the collections, a find with a JSON filter, projection and sort, inserting and editing
 * documents as JSON (checked before it is sent), and a live watch of the collection that shows each
 * change and refreshes the results.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ChangeStream } from '@rustydb/client';
import type { PageProps } from '../app.tsx';
import { ErrorBox } from '../lib/errors.tsx';
import { parseJsonObject } from '../lib/json-input.ts';
import { href, navigate } from '../lib/router.ts';
import type { Session } from '../lib/session.ts';

const BASE = '/api/v1/documents/collections';
type Doc = Record<string, unknown> & { _id?: unknown };

export default function DocumentsPage({ session, route }: PageProps) {
  const [collections, setCollections] = useState<string[]>();
  const [error, setError] = useState<unknown>();
  const [name, setName] = useState('');
  const [version, setVersion] = useState(0);
  useEffect(() => {
    session.client
      .request<{ collections: string[] }>(BASE)
      .then((d) => setCollections(d.collections), setError);
  }, [version]);

  return (
    <div class="page-fill">
      <h1>Documents</h1>
      <ErrorBox error={error} />
      <div class="split">
        <nav aria-label="Collections">
          <ul class="list">
            {(collections ?? []).map((c) => (
              <li key={c}>
                <a
                  class="table-link"
                  href={href('documents', c)}
                  aria-current={c === route.arg ? 'page' : undefined}
                >
                  {c}
                </a>
              </li>
            ))}
          </ul>
          <form
            class="toolbar"
            onSubmit={async (e) => {
              e.preventDefault();
              try {
                await session.client.request(BASE, { body: { name } });
                setVersion((v) => v + 1);
                navigate('documents', name);
                setName('');
              } catch (err) {
                setError(err);
              }
            }}
          >
            <label>
              New collection
              <input value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit">Create</button>
          </form>
        </nav>
        <section class="stack" aria-label={route.arg ? `Collection ${route.arg}` : 'Collection'}>
          {route.arg ? (
            <CollectionView key={route.arg} session={session} collection={route.arg} />
          ) : (
            <p>Choose a collection.</p>
          )}
        </section>
      </div>
    </div>
  );
}

function CollectionView({ session, collection }: { session: Session; collection: string }) {
  const path = `${BASE}/${encodeURIComponent(collection)}`;
  const [filter, setFilter] = useState('{}');
  const [projection, setProjection] = useState('');
  const [sort, setSort] = useState('');
  const [limit, setLimit] = useState(50);
  const [docs, setDocs] = useState<Doc[]>([]);
  const [count, setCount] = useState<number>();
  const [invalid, setInvalid] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [editing, setEditing] = useState<{ doc?: Doc; text: string } | undefined>();
  const [watching, setWatching] = useState(false);
  // The server acknowledged the watch: only changes committed after this are sure to be shown.
  const [watchStarted, setWatchStarted] = useState(false);
  const [changes, setChanges] = useState<string[]>([]);
  const [reloads, setReloads] = useState(0);
  const canWrite = session.access.onTable('INSERT', collection);
  const canUpdate = session.access.onTable('UPDATE', collection);
  const canDelete = session.access.onTable('DELETE', collection);

  // Finds answer in any order (a live watch starts one per change, the user others): only the answer
  // of the latest one started is shown, never an older one that came back after it.
  const latestFind = useRef(0);
  const find = async (): Promise<void> => {
    const f = parseJsonObject(filter, 'Filter', {});
    const p = parseJsonObject(projection, 'Projection', {});
    const s = parseJsonObject(sort, 'Sort', {});
    const bad = [f, p, s].find((x) => !x.ok);
    if (bad && !bad.ok) {
      setInvalid(bad.message);
      return;
    }
    setInvalid(undefined);
    const body: Record<string, unknown> = { limit };
    if (f.ok && Object.keys(f.value).length > 0) body.filter = f.value;
    if (p.ok && Object.keys(p.value).length > 0) body.projection = p.value;
    if (s.ok && Object.keys(s.value).length > 0) body.sort = s.value;
    const started = ++latestFind.current;
    try {
      const [found, counted] = await Promise.all([
        session.client.request<{ documents: Doc[] }>(`${path}/find`, { body }),
        session.client.request<{ count: number }>(`${path}/count`, {
          body: body.filter ? { filter: body.filter } : {},
        }),
      ]);
      if (started !== latestFind.current) return;
      setDocs(found.documents);
      setCount(counted.count);
      setError(undefined);
    } catch (err) {
      if (started === latestFind.current) setError(err);
    }
  };

  useEffect(() => {
    void find();
  }, [reloads]);

  useEffect(() => {
    if (!watching) return;
    const stream: ChangeStream = session.client.watch(collection, { fullDocument: 'updateLookup' });
    setWatchStarted(false);
    stream.ready().then(
      () => setWatchStarted(true),
      () => {}, // the loop below reports the error
    );
    void (async () => {
      try {
        for await (const e of stream) {
          const line =
            e.operationType === 'reset'
              ? `reset (${e.reason})`
              : `${e.wallTime ? new Date(e.wallTime).toLocaleTimeString() : ''} ${e.operationType} ${JSON.stringify(e.documentKey?._id ?? '')}`;
          setChanges((list) => [line, ...list].slice(0, 100));
          setReloads((n) => n + 1);
        }
      } catch (err) {
        setError(err);
        setWatching(false);
      }
    })();
    return () => void stream.unsubscribe();
  }, [watching, collection]);

  const save = async (): Promise<void> => {
    if (!editing) return;
    const parsed = parseJsonObject(editing.text, 'The document');
    if (!parsed.ok) {
      setInvalid(parsed.message);
      return;
    }
    setInvalid(undefined);
    try {
      if (editing.doc) {
        const { _id: _ignored, ...replacement } = parsed.value;
        await session.client.request(`${path}/update`, {
          body: { filter: { _id: editing.doc._id }, update: replacement },
        });
      } else {
        await session.client.request(`${path}/insert`, { body: { document: parsed.value } });
      }
      setEditing(undefined);
      if (!watching) setReloads((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  };

  const remove = async (doc: Doc): Promise<void> => {
    if (!confirm(`Delete the document ${JSON.stringify(doc._id)}?`)) return;
    try {
      await session.client.request(`${path}/delete`, { body: { filter: { _id: doc._id } } });
      if (!watching) setReloads((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <div class="stack">
      <h2>{collection}</h2>
      <form
        class="form-grid"
        aria-label="Find documents"
        onSubmit={(e) => {
          e.preventDefault();
          void find();
        }}
      >
        <label>
          <span>Filter</span>
          <input
            class="mono"
            value={filter}
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          <span>Projection</span>
          <input
            class="mono"
            value={projection}
            placeholder='{"name": 1}'
            onInput={(e) => setProjection((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          <span>Sort</span>
          <input
            class="mono"
            value={sort}
            placeholder='{"age": -1}'
            onInput={(e) => setSort((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          <span>Limit</span>
          <input
            type="number"
            min={1}
            max={100000}
            value={limit}
            onInput={(e) => setLimit(Number((e.target as HTMLInputElement).value))}
          />
        </label>
        <span />
        <span class="toolbar">
          <button type="submit" class="primary">
            Find
          </button>
          {canWrite ? (
            <button type="button" onClick={() => setEditing({ text: '{\n  \n}' })}>
              Insert document
            </button>
          ) : null}
          <label>
            <input
              type="checkbox"
              role="switch"
              checked={watching}
              onChange={(e) => setWatching((e.target as HTMLInputElement).checked)}
            />
            Watch live
          </label>
          <span data-testid="doc-count">{count === undefined ? '' : `${docs.length} shown of ${count}`}</span>
        </span>
      </form>
      {invalid ? (
        <div class="error" role="alert">
          {invalid}
        </div>
      ) : null}
      <ErrorBox error={error} title="The server refused" />
      {editing ? (
        <form
          class="notice"
          aria-label={editing.doc ? 'Edit document' : 'New document'}
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <label class="stacked">
            {editing.doc ? `Document ${JSON.stringify(editing.doc._id)} (JSON)` : 'New document (JSON)'}
            <textarea
              rows={8}
              value={editing.text}
              onInput={(e) => setEditing({ ...editing, text: (e.target as HTMLTextAreaElement).value })}
            />
          </label>
          <div class="toolbar">
            <button type="submit" class="primary">
              {editing.doc ? 'Save document' : 'Insert'}
            </button>
            <button type="button" onClick={() => setEditing(undefined)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      {watching ? (
        <section aria-label="Changes" class="notice">
          <h3>Changes</h3>
          {changes.length === 0 ? (
            <p class="muted" role="status">
              {watchStarted ? 'Watching; no change yet.' : 'Starting the watch…'}
            </p>
          ) : null}
          <ul class="mono" data-testid="doc-changes">
            {changes.map((c, i) => (
              <li key={`${i}-${c}`}>{c}</li>
            ))}
          </ul>
        </section>
      ) : null}
      <div class="docs-list">
        {docs.map((doc, i) => (
          <article
            key={JSON.stringify(doc._id ?? i)}
            class="notice"
            aria-label={`Document ${JSON.stringify(doc._id ?? i)}`}
          >
            <pre tabIndex={0}>{JSON.stringify(doc, null, 2)}</pre>
            <div class="toolbar">
              {canUpdate && doc._id !== undefined ? (
                <button type="button" onClick={() => setEditing({ doc, text: JSON.stringify(doc, null, 2) })}>
                  Edit
                </button>
              ) : null}
              {canDelete && doc._id !== undefined ? (
                <button type="button" class="danger" onClick={() => void remove(doc)}>
                  Delete
                </button>
              ) : null}
            </div>
          </article>
        ))}
      </div>
    </div>
  );
}
