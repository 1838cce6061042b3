/**
 * The table browser: every table and view the user can see, with its columns, types, keys, indexes
 * and foreign keys; its rows a page at a time, sorted and filtered on the server; inserting, editing
 * and deleting rows where the user's grants allow it (and the reason when they do not); and a live
 * switch that subscribes to the table and shows each change as it commits, highlighted in place.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { SqlValue, TableEvent, TableSubscription } from '@rustydb/client';
import type { PageProps } from '../app.tsx';
import type { TableInfo } from '../lib/catalog.ts';
import { ErrorBox } from '../lib/errors.tsx';
import { cellText, formatCount, parseInput, quoteIdent } from '../lib/format.ts';
import { href, navigate } from '../lib/router.ts';
import { useCatalog } from '../lib/use-catalog.ts';
import type { Session } from '../lib/session.ts';

const PAGE_SIZES = [25, 50, 100];
const OPERATORS = ['=', '!=', '<', '<=', '>', '>=', 'contains', 'is null', 'is not null'] as const;
type Operator = (typeof OPERATORS)[number];
/** How long a live change stays highlighted. */
const HIGHLIGHT_MS = 4000;

type Row = Record<string, unknown>;
interface ShownRow {
  row: Row;
  /** A live change that touched this row lately. */
  mark?: 'inserted' | 'updated' | 'deleted';
}

export default function TablesPage({ session, route }: PageProps) {
  const catalog = useCatalog(session.client);
  const tables = catalog.tables;
  const selected = route.arg ? catalog.table(route.arg) : undefined;
  // A table named by the address but not in the catalog may have been created since the catalog was
  // loaded (by another client, another tab, a migration): reload it once for that name before saying
  // there is no such table.
  const missing = route.arg && tables && !selected ? route.arg : undefined;
  const [reloadedFor, setReloadedFor] = useState<string | undefined>(undefined);
  useEffect(() => {
    if (!missing || missing === reloadedFor) return;
    setReloadedFor(missing);
    void catalog.refresh();
  }, [missing, reloadedFor, catalog]);

  useEffect(() => {
    if (!route.arg && tables && tables[0]) navigate('tables', tables[0].name);
  }, [route.arg, tables]);

  return (
    <div class="page-fill">
      <div class="toolbar">
        <h1>Tables</h1>
        <button type="button" onClick={() => void catalog.refresh()}>
          Reload schema
        </button>
      </div>
      <ErrorBox error={catalog.error} />
      <div class="split">
        <nav aria-label="Tables and views">
          {tables && tables.length === 0 ? (
            <p class="muted">No tables yet: create one in the SQL editor.</p>
          ) : null}
          <ul class="list">
            {(tables ?? []).map((t) => (
              <li key={t.name}>
                <a
                  href={href('tables', t.name)}
                  aria-current={t.name === selected?.name ? 'page' : undefined}
                  class="table-link"
                >
                  {t.name} {t.kind === 'view' ? <span class="muted">(view)</span> : null}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <section aria-label={selected ? `Table ${selected.name}` : 'Table'} class="page-fill">
          {selected ? <TableView key={selected.name} session={session} table={selected} /> : null}
          {missing && missing === reloadedFor && !catalog.loading ? (
            <p>There is no table {missing}.</p>
          ) : null}
        </section>
      </div>
    </div>
  );
}

function TableView({ session, table }: { session: Session; table: TableInfo }) {
  const [tab, setTab] = useState<'rows' | 'schema'>('rows');
  return (
    <>
      <h2>{table.name}</h2>
      <div class="tabs" role="tablist" aria-label="Views of the table">
        <button type="button" role="tab" aria-selected={tab === 'rows'} onClick={() => setTab('rows')}>
          Rows
        </button>
        <button type="button" role="tab" aria-selected={tab === 'schema'} onClick={() => setTab('schema')}>
          Schema
        </button>
      </div>
      <div role="tabpanel" class="page-fill">
        {tab === 'rows' ? <RowsView session={session} table={table} /> : <SchemaView table={table} />}
      </div>
    </>
  );
}

function SchemaView({ table }: { table: TableInfo }) {
  return (
    <div>
      <h3>Columns</h3>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Column</th>
            <th scope="col">Type</th>
            <th scope="col">Primary key</th>
            <th scope="col">Not null</th>
            <th scope="col">Default</th>
          </tr>
        </thead>
        <tbody>
          {table.columns.map((c) => (
            <tr key={c.name}>
              <td>{c.name}</td>
              <td>{c.type || <span class="muted">(none)</span>}</td>
              <td>{c.pk > 0 ? (table.primaryKey.length > 1 ? `yes (${c.pk})` : 'yes') : ''}</td>
              <td>{c.notNull ? 'yes' : ''}</td>
              <td class="mono">{c.defaultValue ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Indexes</h3>
      {table.indexes.length === 0 ? (
        <p class="muted">No indexes.</p>
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Index</th>
              <th scope="col">Columns</th>
              <th scope="col">Unique</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {table.indexes.map((i) => (
              <tr key={i.name}>
                <td>{i.name}</td>
                <td>{i.columns.join(', ')}</td>
                <td>{i.unique ? 'yes' : ''}</td>
                <td>
                  {i.origin === 'pk'
                    ? 'primary key'
                    : i.origin === 'u'
                      ? 'UNIQUE constraint'
                      : 'CREATE INDEX'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Foreign keys</h3>
      {table.foreignKeys.length === 0 ? (
        <p class="muted">No foreign keys.</p>
      ) : (
        <ul>
          {table.foreignKeys.map((f) => (
            <li key={`${f.from}-${f.table}`}>
              {f.from} → <a href={href('tables', f.table)}>{f.table}</a>
              {f.to ? `.${f.to}` : ''}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The key that identifies a row: its primary key, or SQLite's rowid for a table without one. */
function keyColumns(table: TableInfo): string[] {
  if (table.primaryKey.length > 0) return table.primaryKey;
  return table.kind === 'table' ? ['rowid'] : [];
}

function keyOf(row: Row, columns: string[]): string {
  return JSON.stringify(columns.map((c) => row[c] ?? null));
}

function RowsView({ session, table }: { session: Session; table: TableInfo }) {
  const { client, access } = session;
  const keys = keyColumns(table);
  const usesRowid = keys[0] === 'rowid';
  const canInsert = table.kind === 'table' && access.onTable('INSERT', table.name);
  const canUpdate = table.kind === 'table' && keys.length > 0 && access.onTable('UPDATE', table.name);
  const canDelete = table.kind === 'table' && keys.length > 0 && access.onTable('DELETE', table.name);
  const readOnly = !canInsert && !canUpdate && !canDelete;

  const [pageSize, setPageSize] = useState(25);
  const [offset, setOffset] = useState(0);
  const [sort, setSort] = useState<{ column: string; descending: boolean } | undefined>();
  const [filter, setFilter] = useState<{ column: string; operator: Operator; value: string }>({
    column: table.columns[0]?.name ?? '',
    operator: '=',
    value: '',
  });
  const [applied, setApplied] = useState<typeof filter | undefined>();
  const [rows, setRows] = useState<ShownRow[]>([]);
  const [total, setTotal] = useState<number | undefined>();
  const [error, setError] = useState<unknown>();
  const [actionError, setActionError] = useState<unknown>();
  const [editing, setEditing] = useState<{ row?: Row } | undefined>();
  const [live, setLive] = useState(false);
  // The server acknowledged the live subscription: only changes committed after this are sure to show.
  const [following, setFollowing] = useState(false);
  const [reloads, setReloads] = useState(0);

  const columns = [...(usesRowid ? ['rowid'] : []), ...table.columns.map((c) => c.name)];

  const where = (): { sql: string; params: SqlValue[] } => {
    if (!applied || !applied.column) return { sql: '', params: [] };
    const column = quoteIdent(applied.column);
    switch (applied.operator) {
      case 'is null':
        return { sql: ` WHERE ${column} IS NULL`, params: [] };
      case 'is not null':
        return { sql: ` WHERE ${column} IS NOT NULL`, params: [] };
      case 'contains':
        return { sql: ` WHERE instr(${column}, ?) > 0`, params: [applied.value] };
      default: {
        const type = table.columns.find((c) => c.name === applied.column)?.type ?? '';
        return { sql: ` WHERE ${column} ${applied.operator} ?`, params: [parseInput(applied.value, type)] };
      }
    }
  };

  useEffect(() => {
    let current = true;
    const condition = where();
    const order = sort ? ` ORDER BY ${quoteIdent(sort.column)} ${sort.descending ? 'DESC' : 'ASC'}` : '';
    const select = `SELECT ${usesRowid ? 'rowid, ' : ''}* FROM ${quoteIdent(table.name)}${condition.sql}${order} LIMIT ? OFFSET ?`;
    Promise.all([
      client.query<Row>(select, [...condition.params, pageSize, offset]),
      client.query<{ n: number }>(
        `SELECT count(*) AS n FROM ${quoteIdent(table.name)}${condition.sql}`,
        condition.params,
      ),
    ]).then(
      ([page, count]) => {
        if (!current) return;
        setRows(page.rows.map((row) => ({ row })));
        setTotal(Number(count.rows[0]?.n ?? 0));
        setError(undefined);
      },
      (err: unknown) => current && setError(err),
    );
    return () => {
      current = false;
    };
  }, [table, pageSize, offset, sort, applied, reloads]);

  // Live: changes to the table as they commit, applied to the rows on screen and highlighted.
  const subscription = useRef<TableSubscription>();
  useEffect(() => {
    if (!live) return;
    const sub = client.subscribe(table.name);
    subscription.current = sub;
    setFollowing(false);
    sub.ready().then(
      () => setFollowing(true),
      () => {}, // the loop below reports the error
    );
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const unmark = (key: string, removeIt: boolean): void => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        setRows((shown) =>
          removeIt
            ? shown.filter((r) => !(r.mark === 'deleted' && keyOf(r.row, keys) === key))
            : shown.map((r) => (keyOf(r.row, keys) === key ? { row: r.row } : r)),
        );
      }, HIGHLIGHT_MS);
      timers.add(timer);
    };
    void (async () => {
      try {
        for await (const event of sub as AsyncIterable<TableEvent>) {
          if (event.type !== 'change' || !event.key) continue;
          const key = keyOf(event.key, keys);
          const row = event.row ? { ...(usesRowid ? event.key : {}), ...event.row } : undefined;
          if (event.op === 'insert' && row) {
            setRows((shown) => [{ row, mark: 'inserted' }, ...shown]);
            setTotal((t) => (t === undefined ? t : t + 1));
            unmark(key, false);
          } else if ((event.op === 'update' || event.op === 'enter') && row) {
            setRows((shown) => {
              const at = shown.findIndex((r) => keyOf(r.row, keys) === key);
              if (at === -1) return [{ row, mark: 'updated' }, ...shown];
              const next = [...shown];
              next[at] = { row, mark: 'updated' };
              return next;
            });
            unmark(key, false);
          } else if (event.op === 'delete' || event.op === 'leave') {
            setRows((shown) =>
              shown.map((r) => (keyOf(r.row, keys) === key ? { ...r, mark: 'deleted' } : r)),
            );
            setTotal((t) => (t === undefined ? t : Math.max(0, t - 1)));
            unmark(key, true);
          }
        }
      } catch (err) {
        setError(err);
        setLive(false);
      }
    })();
    return () => {
      for (const timer of timers) clearTimeout(timer);
      setFollowing(false);
      subscription.current = undefined;
      void sub.unsubscribe();
    };
  }, [live, table]);

  const remove = async (row: Row): Promise<void> => {
    if (!confirm(`Delete the row ${keys.map((k) => `${k} = ${cellText(row[k])}`).join(', ')}?`)) return;
    setActionError(undefined);
    try {
      await client.query(
        `DELETE FROM ${quoteIdent(table.name)} WHERE ${keys.map((k) => `${quoteIdent(k)} = ?`).join(' AND ')}`,
        keys.map((k) => (row[k] ?? null) as SqlValue),
      );
      if (!live) setReloads((n) => n + 1);
    } catch (err) {
      setActionError(err);
    }
  };

  const last = Math.min(offset + pageSize, total ?? 0);
  return (
    <div class="page-fill">
      {readOnly && table.kind === 'table' ? (
        <div class="notice" role="note" data-testid="read-only-reason">
          Read only. {access.explainReadOnly(table.name)}
        </div>
      ) : null}
      <form
        class="toolbar"
        aria-label="Filter rows"
        onSubmit={(e) => {
          e.preventDefault();
          setOffset(0);
          setApplied(filter.value === '' && !filter.operator.startsWith('is') ? undefined : { ...filter });
        }}
      >
        <label>
          Column
          <select
            aria-label="Column"
            value={filter.column}
            onChange={(e) => setFilter({ ...filter, column: (e.target as HTMLSelectElement).value })}
          >
            {columns.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          Condition
          <select
            aria-label="Condition"
            value={filter.operator}
            onChange={(e) =>
              setFilter({ ...filter, operator: (e.target as HTMLSelectElement).value as Operator })
            }
          >
            {OPERATORS.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Value
          <input
            value={filter.value}
            disabled={filter.operator.startsWith('is')}
            onInput={(e) => setFilter({ ...filter, value: (e.target as HTMLInputElement).value })}
          />
        </label>
        <button type="submit">Filter</button>
        <button
          type="button"
          onClick={() => {
            setApplied(undefined);
            setFilter({ ...filter, value: '' });
          }}
        >
          Clear
        </button>
        <span class="spacer" />
        <label>
          <input
            type="checkbox"
            role="switch"
            checked={live}
            onChange={(e) => setLive((e.target as HTMLInputElement).checked)}
          />
          Live
        </label>
        {live ? (
          <span class="muted" role="status">
            {following ? 'Following changes' : 'Starting…'}
          </span>
        ) : null}
        {canInsert ? (
          <button type="button" class="primary" onClick={() => setEditing({})}>
            Insert row
          </button>
        ) : null}
      </form>
      <ErrorBox error={error} />
      <ErrorBox error={actionError} title="The server refused" />
      <div class="log">
        <table class="data" aria-label={`Rows of ${table.name}`}>
          <thead>
            <tr>
              {columns.map((c) => (
                <th
                  scope="col"
                  key={c}
                  aria-sort={sort?.column === c ? (sort.descending ? 'descending' : 'ascending') : undefined}
                >
                  <button
                    type="button"
                    class="sort"
                    onClick={() =>
                      setSort(
                        sort?.column === c && !sort.descending
                          ? { column: c, descending: true }
                          : { column: c, descending: false },
                      )
                    }
                  >
                    {c} {sort?.column === c ? (sort.descending ? '▼' : '▲') : ''}
                  </button>
                </th>
              ))}
              {canUpdate || canDelete ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map(({ row, mark }) => (
              <tr key={keyOf(row, keys) + (mark ?? '')} class={mark} data-change={mark}>
                {columns.map((c) => (
                  <td
                    key={c}
                    class={row[c] === null ? 'null' : typeof row[c] === 'number' ? 'num' : undefined}
                  >
                    {cellText(row[c])}
                  </td>
                ))}
                {canUpdate || canDelete ? (
                  <td>
                    {canUpdate ? (
                      <button type="button" onClick={() => setEditing({ row })} disabled={mark === 'deleted'}>
                        Edit
                      </button>
                    ) : null}{' '}
                    {canDelete ? (
                      <button
                        type="button"
                        class="danger"
                        onClick={() => void remove(row)}
                        disabled={mark === 'deleted'}
                      >
                        Delete
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="toolbar">
        <button
          type="button"
          disabled={offset === 0}
          onClick={() => setOffset(Math.max(0, offset - pageSize))}
        >
          Previous page
        </button>
        <button
          type="button"
          disabled={total === undefined || last >= total}
          onClick={() => setOffset(offset + pageSize)}
        >
          Next page
        </button>
        <span data-testid="row-range" aria-live="polite">
          {total === undefined
            ? ''
            : total === 0
              ? 'no rows'
              : `rows ${formatCount(offset + 1)}–${formatCount(last)} of ${formatCount(total)}`}
        </span>
        <label>
          Rows per page
          <select
            aria-label="Rows per page"
            value={pageSize}
            onChange={(e) => {
              setPageSize(Number((e.target as HTMLSelectElement).value));
              setOffset(0);
            }}
          >
            {PAGE_SIZES.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      </div>
      {editing ? (
        <RowEditor
          session={session}
          table={table}
          keys={keys}
          row={editing.row}
          onClose={(saved) => {
            setEditing(undefined);
            if (saved && !live) setReloads((n) => n + 1);
          }}
        />
      ) : null}
    </div>
  );
}

/** Insert (no row) or edit (a row) in a modal dialog; the server's refusal is shown in it. */
function RowEditor({
  session,
  table,
  keys,
  row,
  onClose,
}: {
  session: Session;
  table: TableInfo;
  keys: string[];
  row: Row | undefined;
  onClose: (saved: boolean) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [values, setValues] = useState<Record<string, { text: string; isNull: boolean }>>(() =>
    Object.fromEntries(
      table.columns.map((c) => {
        const value = row?.[c.name];
        return [
          c.name,
          {
            text: value === null || value === undefined ? '' : cellText(value),
            isNull: row !== undefined && value === null,
          },
        ];
      }),
    ),
  );
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    dialog.current?.showModal();
  }, []);

  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    const name = quoteIdent(table.name);
    const entries = table.columns
      .map((c) => {
        const v = values[c.name]!;
        return {
          column: c,
          value: v.isNull ? null : parseInput(v.text, c.type),
          empty: !v.isNull && v.text === '',
        };
      })
      // On insert an empty field is left to the column's default.
      .filter((e) => row !== undefined || !e.empty);
    try {
      if (row === undefined) {
        await session.client.query(
          entries.length === 0
            ? `INSERT INTO ${name} DEFAULT VALUES`
            : `INSERT INTO ${name} (${entries.map((e) => quoteIdent(e.column.name)).join(', ')}) VALUES (${entries.map(() => '?').join(', ')})`,
          entries.map((e) => e.value),
        );
      } else {
        await session.client.query(
          `UPDATE ${name} SET ${entries.map((e) => `${quoteIdent(e.column.name)} = ?`).join(', ')} WHERE ${keys
            .map((k) => `${quoteIdent(k)} = ?`)
            .join(' AND ')}`,
          [...entries.map((e) => e.value), ...keys.map((k) => (row[k] ?? null) as SqlValue)],
        );
      }
      dialog.current?.close();
      onClose(true);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <dialog ref={dialog} aria-labelledby="row-editor-title" onCancel={() => onClose(false)}>
      <form onSubmit={save} class="page-fill">
        <h2 id="row-editor-title">{row ? `Edit row of ${table.name}` : `Insert into ${table.name}`}</h2>
        <div class="form-grid">
          {table.columns.map((c) => {
            const v = values[c.name]!;
            return (
              <label key={c.name}>
                <span>
                  {c.name} <span class="muted">{c.type}</span>
                </span>
                <span class="toolbar">
                  <input
                    aria-label={c.name}
                    value={v.text}
                    disabled={v.isNull}
                    placeholder={
                      row
                        ? ''
                        : c.defaultValue !== null
                          ? `default ${c.defaultValue}`
                          : c.pk
                            ? 'automatic'
                            : ''
                    }
                    onInput={(e) =>
                      setValues({ ...values, [c.name]: { ...v, text: (e.target as HTMLInputElement).value } })
                    }
                  />
                  <label>
                    <input
                      type="checkbox"
                      checked={v.isNull}
                      onChange={(e) =>
                        setValues({
                          ...values,
                          [c.name]: { ...v, isNull: (e.target as HTMLInputElement).checked },
                        })
                      }
                    />
                    NULL
                  </label>
                </span>
              </label>
            );
          })}
        </div>
        <ErrorBox error={error} title="The server refused" />
        <div class="toolbar">
          <button type="submit" class="primary">
            {row ? 'Save' : 'Insert'}
          </button>
          <button
            type="button"
            onClick={() => {
              dialog.current?.close();
              onClose(false);
            }}
          >
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}
