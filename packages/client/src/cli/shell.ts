/**
 * `rustydb shell`: an interactive SQL shell over the WebSocket protocol, in the manner of psql.
 * Line editing and history come from node:readline (history kept in ~/.rustydb_history, or
 * RUSTYDB_HISTORY; empty disables it). A statement may span lines and runs at its `;`. Results print
 * as a table while they stream. Ctrl-C cancels the running statement (or clears the line); `\q` or
 * Ctrl-D quits. Piped input works too: no prompts, and the exit code is 1 if a statement failed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { RustyDBClient, SqlValue } from '../index.ts';
import { CONNECTION_OPTIONS, CommandError, clientOptions, openClient } from './client-connection.ts';
import { parseFormat, parseInteger, type CommandIo } from './query-command.ts';
import { TablePrinter, type OutputFormat } from './sql-output.ts';
import { StatementRun } from './statement-runner.ts';
import { isBlank, splitStatements } from './statement-splitter.ts';

export const SHELL_USAGE = `rustydb shell [--format table|json|csv]
  interactive SQL; end statements with ';'. \\? lists the backslash commands`;

const HELP = `backslash commands:
  \\dt              list tables and views
  \\d NAME          describe a table's columns
  \\timing [on|off] show how long each statement took
  \\format table|json|csv   how results are printed
  \\?               this help
  \\q               quit (or Ctrl-D)
Ctrl-C cancels the running statement, or clears the statement being typed.
`;

const PROMPT = 'rustydb=> ';
const CONTINUATION = 'rustydb-> ';
const MAX_HISTORY = 1000;

function historyFile(env: NodeJS.ProcessEnv): string | undefined {
  if (env.RUSTYDB_HISTORY !== undefined) return env.RUSTYDB_HISTORY === '' ? undefined : env.RUSTYDB_HISTORY;
  return join(homedir(), '.rustydb_history');
}

function loadHistory(file: string | undefined): string[] {
  if (!file) return [];
  try {
    // readline keeps the newest entry first; the file keeps it last.
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).reverse().slice(0, MAX_HISTORY);
  } catch {
    return [];
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `ERROR: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
}

/**
 * How `\dt` and `\d` read the catalog on each engine. `columns` answers one row per column with
 * `name`, `type`, `notnull`, `dflt_value` and `pk` (the position in the primary key, 0 outside it),
 * as SQLite's PRAGMA table_info does.
 */
interface CatalogQueries {
  tables: string;
  columns: { sql: (table: string) => string; params: (table: string) => SqlValue[] };
}

const CATALOG: Record<string, CatalogQueries> = {
  sqlite: {
    tables: "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') ORDER BY name",
    columns: { sql: (table) => `PRAGMA table_info(${quoteIdent(table)})`, params: () => [] },
  },
  // information_schema shows the caller only what it holds a privilege on, as SQLite's scoped catalog does.
  postgres: {
    tables: `SELECT table_name AS name, CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END AS type
      FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name COLLATE "C"`,
    columns: {
      sql: () => `SELECT c.column_name AS name, c.data_type AS type, c.is_nullable = 'NO' AS notnull,
          c.column_default AS dflt_value, COALESCE((
            SELECT k.ordinal_position FROM information_schema.table_constraints t
              JOIN information_schema.key_column_usage k ON k.constraint_schema = t.constraint_schema
               AND k.constraint_name = t.constraint_name
             WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema
               AND t.table_name = c.table_name AND k.column_name = c.column_name), 0) AS pk
        FROM information_schema.columns c
       WHERE c.table_schema = 'public' AND c.table_name = ? ORDER BY c.ordinal_position`,
      params: (table) => [table],
    },
  },
};

class Shell {
  readonly #client: RustyDBClient;
  readonly #io: CommandIo;
  readonly #write: (text: string) => void;
  readonly #interactive: boolean;
  #format: OutputFormat;
  #timing = false;
  #engineCatalog: Promise<CatalogQueries> | undefined;
  #running: StatementRun | undefined;
  failures = 0;

  constructor(client: RustyDBClient, io: CommandIo, format: OutputFormat, interactive: boolean) {
    this.#client = client;
    this.#io = io;
    this.#write = (text) => void io.stdout.write(text);
    this.#format = format;
    this.#interactive = interactive;
  }

  /** Ctrl-C: stop the running statement. False when nothing was running. */
  interrupt(): boolean {
    if (!this.#running) return false;
    this.#running.cancel();
    return true;
  }

  async runSql(sql: string): Promise<void> {
    const started = performance.now();
    const run = new StatementRun(this.#client, sql, [], {
      format: this.#format,
      write: this.#write,
      progress: this.#interactive ? { stream: this.#io.stderr, intervalMs: 1000 } : undefined,
    });
    this.#running = run;
    try {
      await run.result();
    } catch (err) {
      this.failures++;
      if (run.cancelled) this.#io.stderr.write('ERROR: canceling statement due to user request\n');
      else this.#io.stderr.write(`${describeError(err)}\n`);
    } finally {
      this.#running = undefined;
    }
    if (this.#timing) this.#write(`Time: ${(performance.now() - started).toFixed(3)} ms\n`);
  }

  /** Runs a backslash command; returns false for `\q`. */
  async backslash(line: string): Promise<boolean> {
    const [command = '', ...args] = line.slice(1).trim().split(/\s+/);
    switch (command) {
      case 'q':
        return false;
      case '?':
        this.#write(HELP);
        return true;
      case 'timing':
        this.#timing = args[0] === undefined ? !this.#timing : args[0] === 'on';
        this.#write(`Timing is ${this.#timing ? 'on' : 'off'}.\n`);
        return true;
      case 'format':
        try {
          this.#format = parseFormat(args[0]);
          this.#write(`Output format is ${this.#format}.\n`);
        } catch (err) {
          this.#io.stderr.write(`${(err as Error).message}\n`);
        }
        return true;
      case 'dt':
        await this.#listTables();
        return true;
      case 'd':
        if (args[0] === undefined) await this.#listTables();
        else await this.#describe(args.join(' ').replace(/^"(.*)"$/, '$1'));
        return true;
      default:
        this.#io.stderr.write(`invalid command \\${command}; try \\? for help\n`);
        return true;
    }
  }

  /** The catalog queries of the server's engine (the schema endpoint names it), asked once. */
  #catalog(): Promise<CatalogQueries> {
    this.#engineCatalog ??= this.#client.schema().then(({ engine }) => CATALOG[engine] ?? CATALOG.sqlite!);
    return this.#engineCatalog;
  }

  async #listTables(): Promise<void> {
    try {
      const result = await this.#client.query((await this.#catalog()).tables, [], { rowMode: 'array' });
      // The server's own tables and SQLite's are not the user's business.
      const rows = result.rows.filter(([name]) => {
        const text = String(name);
        return !text.startsWith('sqlite_') && !text.startsWith('_rustydb_');
      });
      this.#printTable(['Name', 'Type'], rows);
    } catch (err) {
      this.failures++;
      this.#io.stderr.write(`${describeError(err)}\n`);
    }
  }

  async #describe(table: string): Promise<void> {
    try {
      const { columns } = await this.#catalog();
      const result = await this.#client.query(columns.sql(table), columns.params(table), {
        rowMode: 'array',
      });
      if (result.rows.length === 0) {
        this.failures++;
        this.#io.stderr.write(`Did not find any table named "${table}".\n`);
        return;
      }
      const at = (name: string): number => result.columns.indexOf(name);
      const rows: SqlValue[][] = result.rows.map((r) => [
        r[at('name')] ?? null,
        r[at('type')] ?? null,
        r[at('notnull')] ? 'not null' : '',
        r[at('dflt_value')] ?? null,
        Number(r[at('pk')]) > 0 ? 'primary key' : '',
      ]);
      this.#write(`Table "${table}"\n`);
      this.#printTable(['Column', 'Type', 'Nullable', 'Default', 'Key'], rows);
    } catch (err) {
      this.failures++;
      this.#io.stderr.write(`${describeError(err)}\n`);
    }
  }

  #printTable(columns: string[], rows: SqlValue[][]): void {
    const printer = new TablePrinter(this.#write);
    printer.chunk(columns, rows);
    printer.end(rows.length, undefined);
  }
}

export async function shellCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CONNECTION_OPTIONS, format: { type: 'string' }, 'reconnect-attempts': { type: 'string' } },
  });
  if (positionals.length > 0) throw new CommandError(`usage: ${SHELL_USAGE}`, 2);
  const format = parseFormat(values.format);
  const options = clientOptions(values, io.env, {
    reconnectDelay: 1000,
    maxReconnectAttempts: parseInteger('reconnect-attempts', values['reconnect-attempts'], 0) ?? 5,
  });
  const client = await openClient(options);
  const interactive = Boolean(io.stdin.isTTY && io.stdout.isTTY);
  const shell = new Shell(client, io, format, interactive);
  const file = interactive ? historyFile(io.env) : undefined;
  // History holds whole statements, as psql's does, not the lines they were typed on: readline is told
  // to keep none itself (historySize 0) and navigates the entries added here.
  const history = loadHistory(file);
  const rl = createInterface({
    input: io.stdin,
    output: io.stdout as NodeJS.WritableStream,
    terminal: interactive,
    history,
    historySize: 0,
  });
  const remember = (text: string): void => {
    const entry = text.replace(/\s*\n\s*/g, ' ').trim();
    if (!interactive || entry === '') return;
    const seen = history.indexOf(entry);
    if (seen !== -1) history.splice(seen, 1);
    history.unshift(entry);
    if (history.length > MAX_HISTORY) history.length = MAX_HISTORY;
  };
  let buffer = '';
  const prompt = (): void => {
    if (!interactive) return;
    rl.setPrompt(isBlank(buffer) ? PROMPT : CONTINUATION);
    rl.prompt();
  };
  const onInterrupt = (): void => {
    if (shell.interrupt()) return;
    if (!interactive) {
      // Ctrl-C with nothing running ends a non-interactive shell, as it would any program.
      rl.close();
      return;
    }
    // Nothing running: forget what was typed so far, as psql does.
    buffer = '';
    io.stdout.write('^C\n');
    prompt();
  };
  rl.on('SIGINT', onInterrupt);
  if (!interactive) process.on('SIGINT', onInterrupt);
  client.on('state', (state) => {
    if (state === 'reconnecting') io.stderr.write('connection lost; reconnecting…\n');
  });
  if (interactive) {
    const who = client.session?.user ? ` as ${client.session.user}` : '';
    io.stdout.write(`Connected to ${client.httpUrl}${who}. Type \\? for help, \\q to quit.\n`);
  }
  prompt();
  try {
    for await (const line of rl) {
      if (isBlank(buffer) && line.trim().startsWith('\\')) {
        buffer = '';
        remember(line);
        if (!(await shell.backslash(line.trim()))) break;
      } else {
        buffer += `${line}\n`;
        const { statements, rest } = splitStatements(buffer);
        buffer = rest;
        for (const statement of statements) {
          remember(statement);
          await shell.runSql(statement);
        }
      }
      if (client.state === 'closed') {
        io.stderr.write('connection closed; bye\n');
        return 2;
      }
      prompt();
    }
    // End of input: a last statement without its ';' still runs.
    if (!isBlank(buffer)) await shell.runSql(buffer.trim());
  } finally {
    if (!interactive) process.off('SIGINT', onInterrupt);
    rl.close();
    if (file && history.length > 0) {
      try {
        writeFileSync(file, `${[...history].reverse().join('\n')}\n`, { mode: 0o600 });
      } catch {
        // History is a convenience; a read-only home must not break the shell.
      }
    }
    await client.close();
  }
  return !interactive && shell.failures > 0 ? 1 : 0;
}
