/**
 * One logical replication connection: `START_REPLICATION` on a slot with the `pgoutput` plugin, read as
 * an async iterator of decoded messages and keepalives, with standby status updates sent back. The
 * consumer pulls: while it lags, the socket is paused, so PostgreSQL (not this process) holds what is
 * not read yet.
 *
 * Only one connection at a time may stream from a slot: PostgreSQL refuses a second one with
 * SQLSTATE 55006 (object in use), which is how nodes tell that another holds it.
 */
import { openClient, type ConnectionSettings, type PgClient } from './driver.ts';
import { formatLsn, parsePgoutput, type PgoutputMessage } from './pgoutput.ts';

export type ReplicationEvent =
  | { kind: 'data'; message: PgoutputMessage }
  /** The server has sent everything up to `walEnd`. */
  | { kind: 'keepalive'; walEnd: bigint; replyRequested: boolean };

interface ReplicationConnection {
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

/** Queue lengths at which the socket is paused and resumed. */
const PAUSE_AT = 2000;
const RESUME_AT = 200;
/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01), for status timestamps. */
const PG_EPOCH_US = 946_684_800_000_000n;

export class ReplicationStream {
  readonly #client: PgClient;
  readonly #connection: ReplicationConnection;
  readonly #queue: ReplicationEvent[] = [];
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  #ended = false;
  #paused = false;

  private constructor(client: PgClient) {
    this.#client = client;
    this.#connection = (client as unknown as { connection: ReplicationConnection }).connection;
  }

  /** Connects and starts streaming from `startLsn` (PostgreSQL moves it up to the slot's confirmed position). */
  static async start(
    settings: ConnectionSettings,
    slot: string,
    publication: string,
    startLsn: bigint,
  ): Promise<ReplicationStream> {
    const client = await openClient({ ...settings, replication: true });
    const stream = new ReplicationStream(client);
    client.on('error', (err) => stream.#fail(err));
    client.on('end', () => stream.#fail(new Error('the replication connection closed')));
    const started = new Promise<void>((resolve) => stream.#connection.once('replicationStart', resolve));
    stream.#connection.on('copyData', ({ chunk }) => stream.#receive(chunk));
    const running = client.query(
      `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(startLsn)} (proto_version '1', publication_names '${publication}', messages 'true')`,
    );
    running.then(
      () => stream.#fail(new Error('replication ended')),
      (err: Error) => stream.#fail(err),
    );
    try {
      await Promise.race([started, running]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return stream;
  }

  #receive(chunk: Buffer): void {
    const kind = chunk[0];
    if (kind === 0x77) {
      // XLogData: start, end, send time (8 bytes each), then the plugin's message.
      this.#push({ kind: 'data', message: parsePgoutput(chunk.subarray(25)) });
    } else if (kind === 0x6b) {
      this.#push({
        kind: 'keepalive',
        walEnd: chunk.readBigUInt64BE(1),
        replyRequested: chunk[17] === 1,
      });
    }
  }

  #push(event: ReplicationEvent): void {
    this.#queue.push(event);
    if (!this.#paused && this.#queue.length >= PAUSE_AT) {
      this.#paused = true;
      this.#connection.stream.pause();
    }
    this.#wake?.();
  }

  #fail(err: Error): void {
    if (this.#ended) return;
    this.#failure ??= err;
    this.#wake?.();
  }

  /** Events received and not yet taken. */
  get pending(): number {
    return this.#queue.length;
  }

  /** The next event; waits for one. Throws once the connection failed and nothing is left. */
  async next(): Promise<ReplicationEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) {
        if (this.#paused && this.#queue.length <= RESUME_AT) {
          this.#paused = false;
          this.#connection.stream.resume();
        }
        return event;
      }
      if (this.#failure) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** Tells PostgreSQL that everything up to `lsn` is applied: the slot may release the WAL before it. */
  confirm(lsn: bigint, replyRequested = false): void {
    if (this.#ended || this.#failure) return;
    const message = Buffer.alloc(34);
    message.write('r', 0, 'latin1');
    message.writeBigUInt64BE(lsn, 1);
    message.writeBigUInt64BE(lsn, 9);
    message.writeBigUInt64BE(lsn, 17);
    message.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_US, 25);
    message.writeUInt8(replyRequested ? 1 : 0, 33);
    this.#connection.sendCopyFromChunk(message);
  }

  async close(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.#failure ??= new Error('closed');
    this.#wake?.();
    await this.#client.end().catch(() => undefined);
  }
}
