/**
 * The SQL editor: CodeMirror with SQLite highlighting and completion of the user's tables and
 * columns; Ctrl/Cmd-Enter runs, Cancel stops the query on the server; rows stream into the
 * virtualized grid with the row count, elapsed time and rows/s updated once a frame; errors show
 * their code; past statements are in the history; the result exports as CSV or JSON.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { SQLite, sql } from '@codemirror/lang-sql';
import type { ArrayRow, QueryStream } from '@rustydb/client';
import type { PageProps } from '../app.tsx';
import { DataGrid } from '../components/data-grid.tsx';
import { createCodeEditor, type CodeEditor } from '../lib/code-editor.ts';
import { catalogOf, type TableInfo } from '../lib/catalog.ts';
import { ErrorBox } from '../lib/errors.tsx';
import { download, toCsv, toJson } from '../lib/export.ts';
import { formatCount, formatMs } from '../lib/format.ts';
import { addToHistory, clearHistory, loadHistory, type HistoryEntry } from '../lib/history.ts';
import { ResultRows } from '../lib/result-rows.ts';

const CHUNK_SIZE = 2000;
const DRAFT_KEY = 'rustydb.console.draft';

function sqlLanguage(tables: TableInfo[] | undefined) {
  const schema: Record<string, string[]> = {};
  for (const table of tables ?? []) schema[table.name] = table.columns.map((c) => c.name);
  return sql({ dialect: SQLite, schema, upperCaseKeywords: true });
}

interface Run {
  sql: string;
  status: 'running' | 'done' | 'cancelled' | 'failed';
  columns: string[];
  rows: ResultRows;
  count: number;
  startedAt: number;
  elapsedMs: number;
  rowsAffected?: number;
  error?: unknown;
}

/** Statements that may change the schema: the catalog is reloaded after them. */
const SCHEMA_CHANGE = /^\s*(create|drop|alter)\b/i;

export default function SqlPage({ session }: PageProps) {
  const { client } = session;
  const editorHost = useRef<HTMLDivElement>(null);
  const editor = useRef<CodeEditor>();
  const stream = useRef<QueryStream<ArrayRow>>();
  const [run, setRun] = useState<Run>();
  const [, setFrame] = useState(0);
  const [history, setHistory] = useState<HistoryEntry[]>(loadHistory);
  const [showHistory, setShowHistory] = useState(false);
  const runRef = useRef<() => void>(() => {});

  useEffect(() => {
    const catalog = catalogOf(client);
    editor.current = createCodeEditor({
      parent: editorHost.current!,
      doc: localStorage.getItem(DRAFT_KEY) ?? 'SELECT 1;',
      label: 'SQL statement (Ctrl+Enter or Cmd+Enter runs it)',
      language: sqlLanguage(catalog.tables),
      placeholder: 'SELECT * FROM …',
      onRun: () => runRef.current(),
      onChange: (doc) => localStorage.setItem(DRAFT_KEY, doc),
    });
    const off = catalog.subscribe(() => editor.current?.setLanguage(sqlLanguage(catalog.tables)));
    return () => {
      off();
      void stream.current?.cancel();
      editor.current?.destroy();
    };
  }, [client]);

  const execute = async (): Promise<void> => {
    const text = editor.current?.getText().trim().replace(/;\s*$/, '') ?? '';
    if (!text || stream.current) return;
    const current: Run = {
      sql: text,
      status: 'running',
      columns: [],
      rows: new ResultRows(),
      count: 0,
      startedAt: performance.now(),
      elapsedMs: 0,
    };
    setRun(current);
    const query = client.stream(text, [], { chunkSize: CHUNK_SIZE, timeout: 0, rowMode: 'array' });
    stream.current = query;
    // Repaint at most once a frame however fast the chunks come.
    let frame = 0;
    const tick = (): void => {
      current.elapsedMs = performance.now() - current.startedAt;
      setFrame((f) => f + 1);
      frame = current.status === 'running' ? requestAnimationFrame(tick) : 0;
    };
    frame = requestAnimationFrame(tick);
    try {
      for await (const chunk of query) {
        if (current.columns.length === 0 && chunk.columns.length > 0) current.columns = chunk.columns;
        current.rows.append(chunk.rows, current.columns.length);
        current.count = current.rows.count;
        if (!chunk.hasMore) current.rowsAffected = chunk.rowsAffected;
      }
      current.status = stream.current === query && current.status === 'running' ? 'done' : current.status;
    } catch (err) {
      current.status = 'failed';
      current.error = err;
    } finally {
      cancelAnimationFrame(frame);
      stream.current = undefined;
      current.elapsedMs = performance.now() - current.startedAt;
      setRun({ ...current });
      setHistory(
        addToHistory({
          sql: text,
          at: new Date().toISOString(),
          rows: current.count,
          ms: Math.round(current.elapsedMs),
          ...(current.error ? { error: String((current.error as Error).message ?? current.error) } : {}),
        }),
      );
      if (current.status === 'done' && SCHEMA_CHANGE.test(text)) void catalogOf(client).refresh();
    }
  };
  runRef.current = () => void execute();

  const cancel = (): void => {
    const query = stream.current;
    if (!query || !run) return;
    run.status = 'cancelled';
    void query.cancel();
  };

  const running = run?.status === 'running';
  const rate = run && run.elapsedMs > 0 ? (run.count / run.elapsedMs) * 1000 : 0;

  return (
    <div class="page-fill">
      <h1>SQL editor</h1>
      <div class="editor" ref={editorHost} />
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => void execute()} disabled={running}>
          Run (Ctrl+Enter)
        </button>
        <button type="button" onClick={cancel} disabled={!running}>
          Cancel
        </button>
        <button
          type="button"
          disabled={!run || running || run.columns.length === 0}
          onClick={() => run && download('result.csv', 'text/csv', toCsv(run.columns, run.rows.toArrays()))}
        >
          Export CSV
        </button>
        <button
          type="button"
          disabled={!run || running || run.columns.length === 0}
          onClick={() =>
            run && download('result.json', 'application/json', toJson(run.columns, run.rows.toArrays()))
          }
        >
          Export JSON
        </button>
        <button type="button" aria-expanded={showHistory} onClick={() => setShowHistory(!showHistory)}>
          History ({history.length})
        </button>
      </div>
      {showHistory ? (
        <section class="history notice" aria-label="Query history">
          {history.length === 0 ? (
            <p class="muted">No statements yet.</p>
          ) : (
            <ul class="list">
              {history.map((entry) => (
                <li key={entry.at + entry.sql}>
                  <button
                    type="button"
                    title={entry.sql}
                    onClick={() => {
                      editor.current?.setText(entry.sql);
                      setShowHistory(false);
                      editor.current?.view.focus();
                    }}
                  >
                    {entry.error ? '✗ ' : ''}
                    {entry.sql.replace(/\s+/g, ' ')}
                  </button>
                </li>
              ))}
            </ul>
          )}
          <button
            type="button"
            onClick={() => {
              clearHistory();
              setHistory([]);
            }}
          >
            Clear history
          </button>
        </section>
      ) : null}
      {run ? (
        <div class="stats" data-testid="sql-stats">
          <span data-testid="row-count">
            {formatCount(run.count)} {run.count === 1 ? 'row' : 'rows'}
          </span>
          <span>elapsed {formatMs(run.elapsedMs)}</span>
          <span>{formatCount(rate)} rows/s</span>
          <span data-testid="run-status" role="status">
            {run.status === 'running'
              ? 'running…'
              : run.status === 'cancelled'
                ? 'cancelled'
                : run.status === 'failed'
                  ? 'failed'
                  : run.columns.length === 0
                    ? `done: ${formatCount(run.rowsAffected ?? 0)} rows affected`
                    : 'done'}
          </span>
        </div>
      ) : null}
      {run?.error ? <ErrorBox error={run.error} /> : null}
      {run && run.columns.length > 0 ? (
        <DataGrid columns={run.columns} row={(i) => run.rows.row(i)} count={run.count} label="Query result" />
      ) : null}
    </div>
  );
}
