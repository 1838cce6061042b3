/**
 * The smallest view of node-postgres (`pg`) and `pg-cursor` that the engine relies on, spelled out
 * once, and the one place that opens connections. Every connection is opened with the settings the
 * value mapping depends on; statements set them again per transaction (see SESSION_SETTINGS), since a
 * user's own `SET` would otherwise outlive its statement on a pooled connection.
 */
import { createRequire } from 'node:module';
import { resultTypes } from './values.ts';

export interface QueryResultLike {
  rows: unknown[][];
  fields: { name: string; dataTypeID: number }[];
  rowCount: number | null;
  command: string;
}

export interface PgClient {
  readonly processID: number | null;
  query(config: {
    /**
     * Prepares the statement once per connection under this name and runs it again by name after:
     * no parse and, once PostgreSQL settles on a generic plan, no planning (for statements the server
     * runs over and over; the name must always come with the same text).
     */
    name?: string;
    text: string;
    values?: unknown[];
    rowMode?: 'array';
    types?: unknown;
    /** 'extended' refuses several statements in one text, even without parameters. */
    queryMode?: 'extended';
  }): Promise<QueryResultLike>;
  query(text: string): Promise<QueryResultLike>;
  query<C extends CursorLike>(cursor: C): C;
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): this;
  on(event: 'end', listener: () => void): this;
  once(event: 'end', listener: () => void): this;
  removeListener(event: 'end', listener: () => void): this;
}

export interface CursorLike {
  read(rows: number): Promise<unknown[][]>;
  close(): Promise<void>;
  /** Set by pg-cursor once the row description arrived. */
  _result?: { fields: { name: string; dataTypeID: number }[]; rowCount: number | null; command: string };
  /**
   * With CursorTransaction.commitAtEnd, once the last read resolved: the answer to its COMMIT
   * (`ROLLBACK` when the transaction had failed).
   */
  readonly commitTag?: string | undefined;
  /**
   * The statement has run to its end: an error after it is its COMMIT's (with
   * CursorTransaction.commitAtEnd).
   */
  readonly statementEnded?: boolean;
  /**
   * The rows each statement of CursorTransaction.begin answered, in PostgreSQL's text form, by
   * statement; complete once the first read resolved.
   */
  readonly beginRows?: readonly (readonly (string | null)[])[][];
}

export interface ConnectionSettings {
  connectionString: string;
  /** Overrides the user and password of the connection string (sessions under RustyDB's roles). */
  user?: string;
  password?: string;
  applicationName: string;
  /** Schemas unqualified names resolve in (default: public). */
  searchPath?: string;
  /** A logical replication connection (walsender) instead of an ordinary one. */
  replication?: boolean;
}

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: Record<string, unknown>) => PgClient;
};
/** A socket that can hold back its writes and send them as one (net.Socket's cork and uncork). */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/** The protocol messages of pg's connection that the cursor below sends itself. */
interface ProtocolWriter {
  stream: Corkable;
  parse(query: { text: string }, more: boolean): void;
  bind(config: Record<string, never>, more: boolean): void;
  execute(config: Record<string, never>, more: boolean): void;
  close(message: { type: 'P'; name: string }, more: boolean): void;
  sync(): void;
}

/** What of pg-cursor's own steps and state the cursor below builds on. */
interface CursorSteps {
  connection: ProtocolWriter | null;
  state: string;
  _portal: string | null;
  submit(connection: ProtocolWriter): void;
  _getRows(rows: number, callback: unknown): void;
  _closePortal(): void;
  _cb: ((err: unknown, rows?: unknown[][]) => void) | null;
  /** The once-listeners pg-cursor puts on the connection for the answer to its Describe. */
  _ifNoData: () => void;
  _rowDescription: () => void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: { text: string }): void;
  handleError(message: unknown): void;
}
const PgCursor = require('pg-cursor') as new (
  text: string,
  values: unknown[],
  config: { rowMode: 'array'; types: unknown },
) => CursorLike & CursorSteps;

/** How a cursor's statement sits in its transaction (see openCursor). */
export interface CursorTransaction {
  /**
   * Statements without parameters (BEGIN and its settings) to run first, sent with the cursor's
   * opening instead of a round trip of their own; the rows they answer with are kept apart, in
   * CursorLike.beginRows.
   */
  begin?: readonly string[];
  /**
   * Commit once the statement has run to its end, with the messages that close its portal: the last
   * read then resolves only after the commit (see CursorLike.commitTag). A cursor closed before its
   * statement ended (a consumer that stopped reading) commits nothing.
   */
  commitAtEnd?: boolean;
  /**
   * The statement returns no rows (one that changes data, without RETURNING): its one read runs
   * it to its end, and the messages that close its portal (with `commitAtEnd`, the COMMIT too) go in
   * the same write as the statement, so that it takes one round trip. With `commitAtEnd` the
   * whole transaction is then one round trip, and it commits if the statement succeeds, whether or not
   * the consumer is still there to hear it, as an autocommit statement sent to PostgreSQL directly
   * does. Should it return rows after all (a rule can make it), the one read takes them all.
   */
  rowless?: boolean;
  /**
   * Statements without parameters to run once the statement has run to its end, before its COMMIT,
   * sent with the messages that close its portal (with `rowless`, in the statement's own write);
   * their answers are not kept. A cursor closed before its statement ended runs none of them.
   */
  end?: readonly string[];
}

/**
 * pg-cursor, with fewer writes and round trips:
 * - it writes each protocol message with a `write` of its own (Parse, Bind, Describe and Flush to open,
 *   Execute and Flush per read, Close and Sync to end): each is a system call and may wake the
 *   PostgreSQL backend for part of a step. With the socket corked, a step's messages leave in one
 *   `writev`, the same messages in the same order;
 * - a transaction's BEGIN and COMMIT may travel with the cursor's first and last step (see
 *   CursorTransaction): an autocommit statement takes two round trips instead of four, one if it
 *   returns no rows.
 */
class Cursor extends PgCursor {
  readonly #begin: readonly string[];
  readonly #commitAtEnd: boolean;
  readonly #rowless: boolean;
  readonly #end: readonly string[];
  /** Command completions still to come from the statements of `begin`. */
  #beginAnswers: number;
  /** Command completions still to come from the statements of `end`, once the statement ended. */
  #endAnswers: number;
  override readonly beginRows: (string | null)[][][];
  /** The statement has run to its end (its CommandComplete came). */
  #ended = false;
  override statementEnded = false;
  /** Close, COMMIT (with commitAtEnd) and Sync are sent: what PostgreSQL answers next settles the run. */
  #endSent = false;
  override commitTag: string | undefined;

  constructor(text: string, values: unknown[], transaction: CursorTransaction) {
    super(text, values, { rowMode: 'array', types: resultTypes });
    this.#begin = transaction.begin ?? [];
    this.#beginAnswers = this.#begin.length;
    this.beginRows = this.#begin.map(() => []);
    this.#commitAtEnd = transaction.commitAtEnd ?? false;
    this.#rowless = transaction.rowless ?? false;
    this.#end = transaction.end ?? [];
    this.#endAnswers = this.#end.length;
  }

  override submit(connection: ProtocolWriter): void {
    corked(connection.stream, () => {
      for (const text of this.#begin) runUnnamed(connection, text);
      super.submit(connection);
    });
  }

  override _getRows(rows: number, callback: unknown): void {
    const connection = this.connection;
    corked(connection?.stream, () => {
      // 0: no limit, the statement runs to its end (it has no rows to hold back).
      super._getRows(this.#rowless ? 0 : rows, callback);
      // Its one read runs it to its end, so the messages that end it can go with that read.
      if (connection && this.#rowless && !this.#endSent) this.#sendEnd(connection, this.#commitAtEnd);
    });
  }

  override handleDataRow(message: unknown): void {
    if (this.#beginAnswers === 0) super.handleDataRow(message);
    else {
      // Sent without a Describe, so without a row description to parse by: the text as it came.
      const fields = (message as { fields: (string | null)[] }).fields;
      this.beginRows[this.#begin.length - this.#beginAnswers]!.push(fields);
    }
  }

  override handleCommandComplete(message: { text: string }): void {
    if (this.#beginAnswers > 0) this.#beginAnswers--;
    else if (!this.#ended) {
      this.#ended = true;
      this.statementEnded = true;
      super.handleCommandComplete(message);
    } else if (this.#endAnswers > 0) this.#endAnswers--;
    else this.commitTag = message.text;
  }

  override _closePortal(): void {
    const connection = this.connection;
    if (!connection || this.state === 'done') return;
    if (this.#endSent) {
      // Closed (and committed) with the statement itself: only the answers are still to come.
      this.state = 'done';
      return;
    }
    corked(connection.stream, () => {
      if ((this.#commitAtEnd || this.#end.length > 0) && this.#ended && this.state !== 'error') {
        this.#sendEnd(connection, this.#commitAtEnd);
      } else super._closePortal();
    });
    this.state = 'done';
  }

  override handleError(message: unknown): void {
    if (!this.#endSent) {
      super.handleError(message);
      return;
    }
    // pg-cursor ignores errors once its portal is closed, but this one answers the statement or its
    // COMMIT: it is the run's outcome. The Sync is sent already (a second would bring a ReadyForQuery
    // of its own), so nothing is left to end: 'done', for which close() sends nothing more.
    const connection = this.connection as unknown as NodeJS.EventEmitter | null;
    connection?.removeListener('noData', this._ifNoData);
    connection?.removeListener('rowDescription', this._rowDescription);
    this.state = 'done';
    const callback = this._cb;
    this._cb = null;
    callback?.(message);
  }

  #sendEnd(connection: ProtocolWriter, commit: boolean): void {
    connection.close({ type: 'P', name: this._portal! }, true);
    for (const text of this.#end) runUnnamed(connection, text);
    if (commit) runUnnamed(connection, 'COMMIT');
    connection.sync();
    this.#endSent = true;
  }
}

/** Parse, Bind and Execute of a statement without parameters, on the unnamed statement and portal. */
function runUnnamed(connection: ProtocolWriter, text: string): void {
  connection.parse({ text }, true);
  connection.bind({}, true);
  connection.execute({}, true);
}

function corked<T>(stream: Corkable | undefined, write: () => T): T {
  stream?.cork();
  try {
    return write();
  } finally {
    stream?.uncork();
  }
}

/**
 * Settings every transaction starts with, so that values read back the same whatever a statement before
 * it on the same connection did: ISO dates in UTC, hex bytea, standard strings, the public schema.
 */
export const SESSION_SETTINGS: Record<string, string> = {
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  bytea_output: 'hex',
  standard_conforming_strings: 'on',
  extra_float_digits: '1',
  search_path: 'public',
};

/**
 * How long PostgreSQL's walsender waits for a word from the node reading the capture slot before it
 * ends the connection and frees the slot for another node (PostgreSQL's own default is 60 s). A node
 * whose process dies normally closes its socket and the slot is free at once, but one that hangs, or
 * whose machine or network goes away, sends nothing: until this passes no other node can capture
 * changes, so none are delivered anywhere. The node answers the walsender's keepalives, which it sends
 * at half this interval, so a live node is not cut off.
 */
export const REPLICATION_SENDER_TIMEOUT = '10s';

export async function openClient(settings: ConnectionSettings): Promise<PgClient> {
  // node-postgres lets the URL's credentials win over separate ones: put a session role's in the URL.
  const url = new URL(settings.connectionString);
  if (settings.user !== undefined) {
    url.username = encodeURIComponent(settings.user);
    url.password = encodeURIComponent(settings.password ?? '');
  }
  const client = new pg.Client({
    connectionString: url.toString(),
    application_name: settings.applicationName,
    options: Object.entries({
      ...SESSION_SETTINGS,
      search_path: settings.searchPath ?? 'public',
      ...(settings.replication ? { wal_sender_timeout: REPLICATION_SENDER_TIMEOUT } : {}),
    })
      .map(([name, value]) => `-c ${name}=${value.replaceAll(' ', '\\ ')}`)
      .join(' '),
    types: resultTypes,
    ...(settings.replication ? { replication: 'database' } : {}),
  });
  await client.connect();
  return client;
}

/**
 * Opens a cursor for `text` on `client`, which must have nothing else under way, and asks for its first
 * `rows` rows: the opening (with `transaction.begin`) and the first read leave in one write.
 */
export function openCursor(
  client: PgClient,
  text: string,
  values: unknown[],
  rows: number,
  transaction: CursorTransaction = {},
): { cursor: CursorLike; first: Promise<unknown[][]> } {
  const cursor = new Cursor(text, values, transaction);
  const connection = (client as unknown as { connection: { stream: Corkable } }).connection;
  return corked(connection.stream, () => {
    client.query(cursor);
    return { cursor, first: cursor.read(rows) };
  });
}

/**
 * Closes a cursor's portal. pg-cursor waits for the server's answer to the close, which never comes
 * once the connection is gone (PostgreSQL ended the session, or the pool closed it): the wait ends then
 * too, rather than leaving the statement (and its timeout) running for ever.
 */
export function closeCursor(client: PgClient, cursor: CursorLike): Promise<void> {
  const connection = client as unknown as { _ended?: boolean; _queryable?: boolean };
  if (connection._ended || connection._queryable === false) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      client.removeListener('end', done);
      resolve();
    };
    client.once('end', done);
    cursor.close().then(done, done);
  });
}

/**
 * Asks PostgreSQL to cancel what `processID` is running, over a separate connection with the protocol's
 * cancel request (no login needed: the key is the connection's own secret).
 */
export async function cancelBackend(client: PgClient): Promise<void> {
  const internal = client as unknown as { host: string; port: number; processID: number; secretKey: number };
  const Connection = require('pg/lib/connection') as new () => {
    connect(port: unknown, host: unknown): void;
    on(event: string, listener: (...args: unknown[]) => void): void;
    cancel(processID: number, secretKey: number): void;
    end(): void;
  };
  await new Promise<void>((resolve) => {
    const con = new Connection();
    // PostgreSQL closes the connection once it has the request; never wait on it for long.
    const giveUp = setTimeout(() => {
      con.end();
      resolve();
    }, 2000);
    const done = (): void => {
      clearTimeout(giveUp);
      resolve();
    };
    con.on('connect', () => con.cancel(internal.processID, internal.secretKey));
    con.on('end', done);
    con.on('error', done);
    if (internal.host.startsWith('/')) con.connect(`${internal.host}/.s.PGSQL.${internal.port}`, undefined);
    else con.connect(internal.port, internal.host);
  });
}
