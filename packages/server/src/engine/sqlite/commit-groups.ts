/**
 * Group commit. With `durability full` every commit waits for the disk to flush the log (milliseconds);
 * one commit per single-row write would make writers queue behind one flush each. Instead, the
 * autocommit writes that wait for the writer run one after another in one transaction on one
 * connection, and one COMMIT (one flush) makes them all durable; each is acknowledged only after it.
 * With `durability normal` nothing waits for the disk, but each commit still writes its own copy of
 * every page it changed to the log: the writes that arrive together there commit in groups too.
 *
 * What each write sees and reports is what it would alone:
 * - its own result: the caller's statement runs by itself, and counts its own changes (see ownTotals);
 * - a failing write undoes only itself: SQLite rolls back a failing statement and keeps the
 *   transaction (its statement journal); should a failure end the whole transaction instead (ON
 *   CONFLICT ROLLBACK, RAISE(ROLLBACK), an I/O error), the writes that ran before it run again in a new
 *   transaction, and they were not acknowledged yet, so none is lost or applied twice;
 * - its order: a group takes one turn at the write gate and admits a write only while no other writer
 *   has queued at the gate since the group did, so writes still commit in their order of arrival, and
 *   their change-log records get their sequence numbers in that order;
 * - its deadline: a write that is stopped while it waits for its group to run it is dropped unrun;
 *   once it ran, its fate is the COMMIT's, like a keyed write run inline.
 */
import type { WriteGate } from './write-gate.ts';

/** What stops a write that waits for its group (a StatementStopper): no AbortSignal per write. */
export interface WaitStop {
  /** The error a stopped write fails with; undefined while it is not stopped. */
  readonly stoppedError: unknown;
  /** Calls `listener` once when the write is stopped; the returned function forgets it. */
  onStop(listener: () => void): () => void;
}

/** Writes in one group at most: bounds how long a group holds the writer. */
const MAX_GROUP_SIZE = 256;

/** The transaction a group runs in: what a member may share with the others (e.g. the schema it sees). */
export type GroupTransaction = object;

/**
 * What a group's transaction runs on. A connection whose `exec` returns nothing, with members whose
 * runs return no promise, runs the whole transaction, BEGIN to COMMIT, without yielding to the event
 * loop: nothing else can then meet it open on that connection (see SqliteEngine's turn groups).
 */
export interface GroupConnection {
  exec(sql: string): Promise<void> | void;
  readonly inTransaction: boolean;
}

interface Member<C> {
  run: (conn: C, transaction: GroupTransaction) => Promise<unknown> | unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** waiting: not run yet; dropped: stopped before it ran; ran: in the transaction (or done). */
  state: 'waiting' | 'dropped' | 'ran';
}

interface Group<C> {
  members: Member<C>[];
  /** The gate's arrival count when the group queued: a newer arrival closes the group. */
  arrival: number;
  /** Set when the group commits: no further member can join. */
  closed: boolean;
}

export interface CommitGroupsOptions<C> {
  gate: WriteGate;
  /**
   * Runs `work` on a connection, for `user` (whom the group's first write runs for), while the gate is
   * held; a failure of `work` means the connection may not be reused.
   */
  onConnection: (user: string, work: (conn: C) => Promise<void>) => Promise<void>;
  /** After every commit, with the number of writes it acknowledged. */
  committed: (writes: number) => void;
}

export class CommitGroups<C extends GroupConnection> {
  /** Group transactions committed, and the writes they acknowledged: how much one flush served. */
  readonly committed = { groups: 0, writes: 0 };
  readonly #options: CommitGroupsOptions<C>;
  /** The newest group, while it may still take members. */
  #open: Group<C> | undefined;

  constructor(options: CommitGroupsOptions<C>) {
    this.#options = options;
  }

  /**
   * Runs `run` in a group transaction and resolves with its result once that transaction committed.
   * `stop` stops the wait (the write is then not run); once run, the write is committed or fails
   * with the group.
   */
  submit<T>(
    user: string,
    stop: WaitStop,
    run: (conn: C, transaction: GroupTransaction) => Promise<T> | T,
  ): Promise<T> {
    if (stop.stoppedError !== undefined) return Promise.reject(stop.stoppedError);
    return new Promise<T>((resolve, reject) => {
      const forget = stop.onStop(() => {
        if (member.state !== 'waiting') return;
        member.state = 'dropped';
        reject(stop.stoppedError);
      });
      const member: Member<C> = {
        run,
        resolve: (value) => {
          forget();
          resolve(value as T);
        },
        reject: (err) => {
          forget();
          reject(err);
        },
        state: 'waiting',
      };
      const group = this.#open;
      if (
        group &&
        !group.closed &&
        group.members.length < MAX_GROUP_SIZE &&
        this.#options.gate.arrivals === group.arrival
      ) {
        group.members.push(member);
        return;
      }
      this.#start(user, member);
    });
  }

  #start(user: string, first: Member<C>): void {
    const { gate } = this.#options;
    const entered = gate.enter();
    const group: Group<C> = { members: [first], arrival: gate.arrivals, closed: false };
    this.#open = group;
    void entered.then(
      () => this.#run(user, group),
      (err: unknown) => this.#settle(group, new Map(), err),
    );
  }

  /** Holding the gate: runs the group's members in order in one transaction, then commits it. */
  async #run(user: string, group: Group<C>): Promise<void> {
    const outcomes = new Map<Member<C>, { ok: true; value: unknown } | { ok: false; err: unknown }>();
    let failure: unknown;
    try {
      // Everyone stopped waiting while the gate was taken: nothing to run.
      if (group.members.every((member) => member.state === 'dropped')) return;
      await this.#options.onConnection(user, async (conn) => {
        let transaction: GroupTransaction = {};
        const begun = conn.exec('BEGIN IMMEDIATE');
        if (begun) await begun;
        try {
          for (let i = 0; i < group.members.length; i++) {
            const member = group.members[i]!;
            if (member.state === 'dropped' || outcomes.has(member)) continue;
            member.state = 'ran';
            try {
              const ran = member.run(conn, transaction);
              outcomes.set(member, { ok: true, value: ran instanceof Promise ? await ran : ran });
            } catch (err) {
              outcomes.set(member, { ok: false, err });
              if (conn.inTransaction) continue;
              // The failure ended the whole transaction: what ran before it is undone. Each restart
              // settles the member that caused it, so this ends.
              for (const earlier of group.members.slice(0, i)) {
                if (outcomes.get(earlier)?.ok) outcomes.delete(earlier);
              }
              transaction = {};
              const begunAgain = conn.exec('BEGIN IMMEDIATE');
              if (begunAgain) await begunAgain;
              i = -1;
            }
          }
          group.closed = true;
          const commit = conn.exec('COMMIT');
          if (commit) await commit;
        } catch (err) {
          group.closed = true;
          try {
            const rolledBack = conn.inTransaction ? conn.exec('ROLLBACK') : undefined;
            if (rolledBack) await rolledBack;
          } catch {
            // The connection is not reused after a failure (see onConnection).
          }
          throw err;
        }
      });
    } catch (err) {
      failure = err;
    } finally {
      group.closed = true;
      if (this.#open === group) this.#open = undefined;
      this.#options.gate.leave();
    }
    if (failure === undefined) {
      let writes = 0;
      for (const outcome of outcomes.values()) if (outcome.ok) writes++;
      this.committed.groups++;
      this.committed.writes += writes;
      this.#options.committed(writes);
    }
    this.#settle(group, outcomes, failure);
  }

  /** Answers every member: its own outcome once committed, or the group's failure. */
  #settle(
    group: Group<C>,
    outcomes: Map<Member<C>, { ok: true; value: unknown } | { ok: false; err: unknown }>,
    failure: unknown,
  ): void {
    group.closed = true;
    if (this.#open === group) this.#open = undefined;
    for (const member of group.members) {
      if (member.state === 'dropped') continue;
      const outcome = outcomes.get(member);
      // A write that failed by itself says so, whatever became of the group.
      if (outcome && !outcome.ok) member.reject(outcome.err);
      else if (failure !== undefined) member.reject(failure);
      else if (outcome) member.resolve(outcome.value);
      else member.reject(new Error('a grouped write was left unrun'));
    }
  }
}
