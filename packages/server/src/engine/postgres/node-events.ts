/**
 * Events between the RustyDB nodes that share one PostgreSQL database (see NodeEvents in engine.ts),
 * for what must reach every node's open sockets within a second: revocations and privilege changes.
 *
 * - An event is a row of `rustydb.node_events`, a table only the login role can read, and the same
 *   statement sends `NOTIFY rustydb_nodes` with an empty payload: every node then reads the rows after
 *   the last one it read. In PostgreSQL any role may NOTIFY or LISTEN on any channel, so the
 *   notification carries nothing: a client's NOTIFY can only make the nodes look for rows that are not
 *   there, and a client's LISTEN learns nothing.
 * - Rows are inserted under a transaction-level advisory lock, released only after the row is visible:
 *   ids become visible in their order, so a reader that moved past an id never misses a lower one.
 * - A node that could not listen for a while (its connection broke) reads what it missed when it
 *   listens again. Rows older than KEEP are deleted by the publishers.
 * - Each node's listening connection is named after the node (`application_name`), so a node counts
 *   the others that listen now in pg_stat_activity: a request that every node answers (the list of
 *   sessions) ends as soon as each has, rather than at its deadline.
 */
import { randomUUID } from 'node:crypto';
import type { NodeEvent, NodeEvents } from '../engine.ts';
import type { OwnerQuery } from './change-log.ts';

export const NODE_EVENTS_CHANNEL = 'rustydb_nodes';
/** The application_name of the listening connections of nodes: this, then the node's id. */
const LISTENER_NAME_PREFIX = 'rustydb (node ';
/** How long an event is kept for a node that was not listening. */
const KEEP = '10 minutes';
/** How often a publisher deletes expired events, milliseconds. */
const PRUNE_EVERY_MS = 60_000;

export class PgNodeEvents implements NodeEvents {
  readonly #query: OwnerQuery;
  readonly #onError: (err: unknown) => void;
  /** This node, so that it skips its own events. */
  readonly #node = randomUUID();
  readonly #listeners = new Set<(event: NodeEvent) => void>();
  /** The id of the last event read; undefined until start(). */
  #lastRead: string | undefined;
  #reading: Promise<void> | undefined;
  /** A notification arrived while reading: read again right after. */
  #again = false;
  #lastPrune = 0;

  constructor(query: OwnerQuery, onError: (err: unknown) => void) {
    this.#query = query;
    this.#onError = onError;
  }

  /** Starts after the events published so far: they were for the nodes running then. */
  async start(): Promise<void> {
    const [row] = await this.#query('SELECT coalesce(max(id), 0)::text FROM rustydb.node_events');
    this.#lastRead = String(row![0]);
  }

  async publish(event: NodeEvent): Promise<void> {
    const body = JSON.stringify({ node: this.#node, event });
    await this.#query('SELECT rustydb.publish_node_event($1)', [body]);
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now();
      await this.#prune();
    }
  }

  /**
   * Deletes the events that came before the first one younger than KEEP, all of them older. The table
   * has no index on `at`: `at < now() - KEEP` read every event to find the expired ones, which come
   * first in id order. The first event kept is found by walking the primary key from the oldest, and
   * the range below it, bounded from below too (an open-ended `id < x` is planned as a scan of the whole
   * table before autovacuum has ever analyzed it), is deleted by index. An event older than KEEP behind
   * a younger one (its transaction began earlier but took the table's lock later) waits for the next
   * prune; none is deleted before its time, and the event just published is always there to be found.
   */
  async #prune(): Promise<void> {
    await this.#query(
      `DELETE FROM rustydb.node_events
        WHERE id >= (SELECT min(id) FROM rustydb.node_events)
          AND id < (SELECT id FROM rustydb.node_events WHERE at >= now() - interval '${KEEP}' ORDER BY id LIMIT 1)`,
    );
  }

  /** The application_name of this node's listening connection (see peers()). */
  get listenerName(): string {
    return `${LISTENER_NAME_PREFIX}${this.#node})`;
  }

  async peers(): Promise<number> {
    const [row] = await this.#query(
      `SELECT count(*)::int FROM pg_stat_activity
        WHERE datname = current_database() AND usename = current_user
          AND starts_with(application_name, $1) AND application_name <> $2`,
      [LISTENER_NAME_PREFIX, this.listenerName],
    );
    return Number(row?.[0] ?? 0);
  }

  onEvent(listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the events published since the last read (on a notification, and when listening again). */
  read(): void {
    if (this.#lastRead === undefined) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = this.#readNew()
      .catch(this.#onError)
      .finally(() => {
        this.#reading = undefined;
        if (this.#again) {
          this.#again = false;
          this.read();
        }
      });
  }

  /**
   * The upper bound changes no answer (every id is drawn from the table's sequence, which never hands
   * out a value above its last_value) but is what makes PostgreSQL read the new events by index: until
   * autovacuum first analyzes the table, an open-ended `id > $1` is planned as a scan and sort of the
   * whole table at some sizes (a few hundred events to about a thousand), which every node ran after
   * every NOTIFY.
   */
  async #readNew(): Promise<void> {
    const rows = await this.#query(
      `SELECT id::text, body FROM rustydb.node_events
        WHERE id > $1::bigint AND id <= (SELECT last_value FROM rustydb.node_events_id_seq) ORDER BY id`,
      [this.#lastRead],
    );
    for (const [id, body] of rows) {
      this.#lastRead = String(id);
      const { node, event } = JSON.parse(String(body)) as { node: string; event: NodeEvent };
      if (node === this.#node) continue;
      for (const listener of this.#listeners) {
        try {
          listener(event);
        } catch (err) {
          this.#onError(err);
        }
      }
    }
  }
}
