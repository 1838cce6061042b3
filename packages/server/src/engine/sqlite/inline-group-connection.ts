/**
 * The inline connection as a commit group's connection, for durability normal (see SqliteEngine's
 * #groups): the group's BEGIN, its writes and its COMMIT all run on the event loop, one after another,
 * with nothing awaited between them (see GroupConnection), so no other statement on that connection,
 * which every inline read shares, can ever run inside the group's open transaction. A commit that does
 * not wait for the disk only writes the group's pages to the log (tens of microseconds); on a pooled
 * connection each BEGIN and COMMIT is also a round trip to libsql's threads.
 *
 * The inline connection never waits for a lock (a wait would stall the event loop): when BEGIN finds the
 * write lock held by another process, `exec` throws LockHeldElsewhere before anything ran, and the
 * group runs on a pooled connection instead, which waits for the lock.
 */
import type { GroupConnection } from './commit-groups.ts';
import type { SyncDatabase } from './driver.ts';

/** BEGIN found the database's write lock held by another process; nothing of the group ran. */
export class LockHeldElsewhere extends Error {
  constructor(cause: unknown) {
    super('the write lock is held by another process', { cause });
  }
}

export class InlineGroupConnection implements GroupConnection {
  /** The inline connection now (the router opens a new one after DDL or a busy statement). */
  readonly #current: () => SyncDatabase;
  readonly #isBusy: (err: unknown) => boolean;

  constructor(current: () => SyncDatabase, isBusy: (err: unknown) => boolean) {
    this.#current = current;
    this.#isBusy = isBusy;
  }

  get inTransaction(): boolean {
    return this.#current().inTransaction;
  }

  exec(sql: string): void {
    try {
      this.#current().exec(sql);
    } catch (err) {
      if (sql === 'BEGIN IMMEDIATE' && this.#isBusy(err)) throw new LockHeldElsewhere(err);
      throw err;
    }
  }
}
