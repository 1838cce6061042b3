/**
 * Works out what a statement touches from SQLite's own compiled program (EXPLAIN), not from its text:
 * every table the VDBE opens for reading or writing, including through views (inlined into the
 * program) and triggers (listed as sub-programs after the main one). Root pages are mapped back to
 * table names through sqlite_schema; virtual tables a program opens are told apart by the object the
 * program names (`vtab:…`), which is the same for every use of a table-valued function on a connection.
 */
import type { AccessNeed, StatementAccess, TablePrivilege } from '../engine.ts';
import { RustyError } from '../../errors/rusty-error.ts';
import { INTERNAL_PREFIX, type GuardedStatement } from '../statement-guard.ts';
import type { AsyncDatabase, SyncDatabase } from './driver.ts';

/** OPFLAG_P2ISREG: OpenWrite's root page is in a register (a table being created right now). */
const P2_IS_REGISTER = 0x10;
const SCHEMA_ROOT_PAGE = 1;

interface ExplainRow {
  addr: number;
  opcode: string;
  p1: number;
  p2: number;
  p3: number;
  p4: string;
  p5: number;
}

/**
 * Functions that read the connection's own state: the last inserted rowid and the rows changed by
 * the last statement, or by all of them. Connections are shared by every session, so their answer
 * would be another session's activity (issue 14). The program names them as `name(argc)`.
 */
const SESSION_STATE_FUNCTION = /^(last_insert_rowid|changes|total_changes)\(/;

/** Table-valued functions that read nothing but their arguments: open to everyone. */
const FREE_FUNCTIONS = ['json_each', 'json_tree'] as const;
/**
 * The schema PRAGMA functions: they describe tables by name, so users without ADMIN are served them from
 * what they may see (catalogue-rewrite.ts) and never reach them directly.
 */
const CATALOGUE_FUNCTIONS = [
  'pragma_table_info',
  'pragma_table_xinfo',
  'pragma_index_list',
  'pragma_index_info',
  'pragma_index_xinfo',
  'pragma_foreign_key_list',
  'pragma_table_list',
] as const;
/** How each is compiled to learn which virtual table object it is on a connection. */
const PROBES = [...FREE_FUNCTIONS, ...CATALOGUE_FUNCTIONS].map(
  (name) => [name, `EXPLAIN SELECT * FROM ${name}${name.startsWith('json_') ? "('[]')" : ''}`] as const,
);
/** Scalar functions that describe how the server was built: ADMIN only. */
const SERVER_FUNCTIONS = /^sqlite_compileoption_(get|used)\(/;

/** `vtab:…` of a VOpen → the table-valued function it is. */
type VtabNames = Map<string, string>;

/**
 * A probe's program, or none when the function's name is taken by a table or view of the database
 * ("'json_each' is not a function"): the function then cannot be called, and any virtual table a
 * statement opens is one it does not name, so it needs ADMIN. One shadowed name must not make every
 * other statement fail to compile.
 */
function unlessShadowed(explain: () => ExplainRow[]): ExplainRow[] {
  try {
    return explain();
  } catch {
    return [];
  }
}

function vtabNamesFrom(programs: readonly (readonly ExplainRow[])[]): VtabNames {
  const names: VtabNames = new Map();
  programs.forEach((program, i) => {
    const open = program.find((row) => row.opcode === 'VOpen');
    if (open) names.set(open.p4, PROBES[i]![0]);
  });
  return names;
}

export class AccessAnalyzer {
  readonly #db: SyncDatabase;
  readonly #schemaDb: SyncDatabase;
  /** Root page → the table it belongs to (tables and their indexes). */
  #rootPages = new Map<number, string>();
  /** Learnt once per connection: its table-valued functions' objects live as long as it does. */
  #vtabNames: VtabNames | undefined;

  /**
   * @param db a connection used only for EXPLAIN (see StatementRouter)
   * @param schemaDb where the schema is read. Not `db`: libsql never resets a finished EXPLAIN, which
   *   SQLite then counts as still running, so a read on the same connection would keep its snapshot
   *   open and stop every checkpoint.
   */
  constructor(db: SyncDatabase, schemaDb: SyncDatabase) {
    this.#db = db;
    this.#schemaDb = schemaDb;
  }

  /** Forget the root-page map; called after DDL. */
  invalidate(): void {
    this.#rootPages.clear();
  }

  analyze(guarded: GuardedStatement): StatementAccess {
    const program = this.#explain(`EXPLAIN ${guarded.text}`);
    return accessOf(
      guarded,
      program,
      (page) => this.#tableAt(page),
      (vtab) => this.#vtabAt(vtab),
    );
  }

  #explain(sql: string): ExplainRow[] {
    return this.#db.prepare(sql).raw().all([]).map(toExplainRow);
  }

  #vtabAt(vtab: string): string | undefined {
    this.#vtabNames ??= vtabNamesFrom(PROBES.map(([, probe]) => unlessShadowed(() => this.#explain(probe))));
    return this.#vtabNames.get(vtab);
  }

  #tableAt(page: number): string | undefined {
    if (!this.#rootPages.has(page)) this.#loadRootPages();
    return this.#rootPages.get(page);
  }

  #loadRootPages(): void {
    this.#rootPages.clear();
    const rows = this.#schemaDb.prepare(ROOT_PAGES_SQL).raw().all([]);
    for (const [page, table] of rows) this.#rootPages.set(Number(page), String(table));
  }

  /**
   * The same analysis on a connection inside a transaction, for a statement that depends on schema
   * changes the transaction has made but not yet committed (a batch that creates a table, then fills it).
   */
  static async analyzeOn(conn: AsyncDatabase, guarded: GuardedStatement): Promise<StatementAccess> {
    const all = async (sql: string): Promise<unknown[][]> => {
      const stmt = await conn.prepare(sql);
      stmt.raw();
      const it = await stmt.iterate([]);
      const out: unknown[][] = [];
      for (let next = it.next(); !next.done; next = it.next()) out.push(next.value);
      return out;
    };
    const program = (await all(`EXPLAIN ${guarded.text}`)).map(toExplainRow);
    const pages = new Map((await all(ROOT_PAGES_SQL)).map(([page, table]) => [Number(page), String(table)]));
    const vtabs = program.some((row) => row.opcode === 'VOpen')
      ? vtabNamesFrom(
          await Promise.all(
            PROBES.map(async ([, probe]) => (await all(probe).catch(() => [])).map(toExplainRow)),
          ),
        )
      : new Map<string, string>();
    return accessOf(
      guarded,
      program,
      (page) => pages.get(page),
      (vtab) => vtabs.get(vtab),
    );
  }
}

const ROOT_PAGES_SQL =
  "SELECT rootpage, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index') AND rootpage > 0";

function toExplainRow(r: unknown[]): ExplainRow {
  return {
    addr: Number(r[0]),
    opcode: String(r[1]),
    p1: Number(r[2]),
    p2: Number(r[3]),
    p3: Number(r[4]),
    p4: String(r[5] ?? ''),
    p5: Number(r[6]),
  };
}

function needKey(need: AccessNeed): string {
  return need.table === undefined ? need.privilege : `${need.privilege} ${need.table}`;
}

/**
 * What a DDL statement needs beyond the tables its program reads: the schema privilege of its verb,
 * ADMIN for stored code and virtual tables, and every right on a table it renames.
 */
export function ddlNeeds(guarded: GuardedStatement): AccessNeed[] {
  // Triggers are stored code that runs with the privileges of whoever fires it: only administrators
  // create or drop them (docs/security.md, "Stored code"). Virtual tables reach data no grant covers.
  const global =
    guarded.objectType === 'VIRTUAL' || guarded.objectType === 'TRIGGER'
      ? 'ADMIN'
      : guarded.verb === 'CREATE'
        ? 'CREATE'
        : guarded.verb === 'DROP'
          ? 'DROP'
          : 'ALTER';
  const needs: AccessNeed[] = [{ privilege: global }];
  // Renaming a table (or its columns) compiles to schema edits only, yet it redirects every grant by
  // name: it needs every right on the table.
  if (guarded.target === null) needs.push({ privilege: 'ADMIN' });
  else if (guarded.target !== undefined) {
    for (const privilege of ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const)
      needs.push({ privilege, table: guarded.target });
  }
  return needs;
}

function accessOf(
  guarded: GuardedStatement,
  program: ExplainRow[],
  tableAt: (page: number) => string | undefined,
  vtabAt: (vtab: string) => string | undefined,
): StatementAccess {
  const needs = new Map<string, AccessNeed>();
  const need = (privilege: TablePrivilege, table: string): void => {
    needs.set(needKey({ privilege, table }), { privilege, table });
  };
  const tables = new Set<string>();
  const mainWrites = new Set<string>();
  const namesSequence = guarded.text.toLowerCase().includes('sqlite_sequence');
  let inTrigger = false;
  let lastAddr = -1;
  /** The statement reads SQLite's catalogue itself: the schema table or a schema PRAGMA. */
  let catalog = guarded.verb === 'PRAGMA';
  // CREATE … compiles schema edits that never read the schema table (DROP and ALTER do read it):
  // a CREATE that reads it is copying the catalogue (CREATE TABLE … AS SELECT … FROM sqlite_master).
  const readsSchemaItself = guarded.kind === 'ddl' && guarded.verb !== 'CREATE';
  for (const row of program) {
    // Sub-programs (trigger bodies) follow the main program, their addresses starting again at 0.
    if (row.addr <= lastAddr) inTrigger = true;
    lastAddr = row.addr;
    if ((row.opcode === 'Function' || row.opcode === 'PureFunc') && SESSION_STATE_FUNCTION.test(row.p4)) {
      const name = row.p4.slice(0, row.p4.indexOf('('));
      throw new RustyError(
        'PERMISSION_DENIED',
        `${name}() is not available: connections are shared by all sessions, so it would tell another session's activity; a statement's own result carries last_insert_id and rows_affected`,
      );
    }
    if (row.opcode === 'VOpen') {
      // A virtual table's data never shows as an opened b-tree: beyond json_each and json_tree (and the
      // schema PRAGMA functions, served separately), a virtual table — FTS, R-tree, dbstat,
      // generate_series, the PRAGMA functions about the server — is read only with ADMIN.
      const name = vtabAt(row.p4);
      if ((CATALOGUE_FUNCTIONS as readonly (string | undefined)[]).includes(name)) catalog = true;
      else if (!(FREE_FUNCTIONS as readonly (string | undefined)[]).includes(name)) {
        needs.set('ADMIN', { privilege: 'ADMIN' });
      }
      continue;
    }
    if (
      row.opcode === 'VUpdate' ||
      ((row.opcode === 'Function' || row.opcode === 'PureFunc') && SERVER_FUNCTIONS.test(row.p4))
    ) {
      needs.set('ADMIN', { privilege: 'ADMIN' });
      continue;
    }
    const isRead = row.opcode === 'OpenRead' || row.opcode === 'ReopenIdx';
    const isWrite = row.opcode === 'OpenWrite' || row.opcode === 'Clear' || row.opcode === 'Destroy';
    if (!isRead && !isWrite) continue;
    const page = row.opcode === 'Clear' || row.opcode === 'Destroy' ? row.p1 : row.p2;
    if (row.opcode === 'OpenWrite' && row.p5 & P2_IS_REGISTER) continue;
    // Database 1 is the temp schema: sorters and ephemeral tables; no user tables live there.
    if (row.opcode !== 'Clear' && row.opcode !== 'Destroy' && row.p3 !== 0) continue;
    if (page === SCHEMA_ROOT_PAGE) {
      // Writing the schema is what DDL does and is authorized as DDL.
      if (isWrite && guarded.kind !== 'ddl') needs.set('ADMIN', { privilege: 'ADMIN' });
      if (isRead && !readsSchemaItself) catalog = true;
      continue;
    }
    const table = tableAt(page);
    if (table === undefined) {
      // A page that maps to no known table: grant it to nobody but admins rather than guess.
      needs.set('ADMIN', { privilege: 'ADMIN' });
      continue;
    }
    // Internal tables are written by the server's own triggers (the change log); user SQL can never
    // name them (the statement guard refuses the prefix), so they need no privilege here.
    if (table.toLowerCase().startsWith(INTERNAL_PREFIX)) continue;
    // SQLite's AUTOINCREMENT bookkeeping, touched by every insert into such a table (the change log's
    // own included): a privilege on it is needed only by a statement that names it.
    if (table === 'sqlite_sequence' && !namesSequence) continue;
    tables.add(table);
    if (guarded.kind === 'ddl') {
      if (isRead) need('SELECT', table);
      continue;
    }
    if (isRead) need('SELECT', table);
    else if (row.opcode === 'Destroy') needs.set('DROP', { privilege: 'DROP' });
    else if (inTrigger) need('WRITE', table);
    else mainWrites.add(table);
  }
  for (const table of mainWrites) {
    for (const verb of guarded.writeVerbs) need(verb, table);
    if (guarded.writeVerbs.size === 0) need('WRITE', table);
    if (guarded.returning) need('SELECT', table);
  }
  if (guarded.kind === 'ddl') for (const ddlNeed of ddlNeeds(guarded)) needs.set(needKey(ddlNeed), ddlNeed);
  // A table needing a specific write privilege need not also be listed as "any write".
  for (const [key, value] of needs) {
    if (
      value.privilege === 'WRITE' &&
      [...guarded.writeVerbs].some((v) => needs.has(`${v} ${value.table}`))
    ) {
      needs.delete(key);
    }
  }
  return {
    needs: [...needs.values()],
    tables: [...tables],
    kind: guarded.kind,
    ...(catalog ? { catalog } : {}),
  };
}
