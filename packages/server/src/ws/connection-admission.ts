/**
 * Which new WebSockets may stay open: connections per client address, connections that have not
 * authenticated yet (per address and in total), and the deadline to authenticate. Unauthenticated sockets
 * cost an attacker nothing but a TCP handshake, so they get a small share of the server and little time;
 * once a socket authenticates, only the per-address and per-user limits apply to it.
 */
import { addressKey } from '../core/client-address.ts';
import { Deadline, DeadlineQueue } from '../core/deadline-queue.ts';

export interface AdmissionLimits {
  /** Open sockets from one address; 0 for no limit. */
  perAddress: number;
  /** Unauthenticated sockets, all addresses together; 0 for no limit. */
  unauthenticated: number;
  /** Unauthenticated sockets from one address; 0 for no limit. */
  unauthenticatedPerAddress: number;
  /** How long a socket may stay unauthenticated. */
  authTimeoutMs: number;
}

/** Why a socket was refused: the setting at fault, its value, and what the client is told. */
export interface Refusal {
  limit:
    'max_connections_per_ip' | 'max_unauthenticated_connections' | 'max_unauthenticated_connections_per_ip';
  max: number;
  message: string;
}

/** What an endpoint tells the gateway about its socket. */
export interface Admission {
  /** The socket has authenticated (or needs no authentication): it leaves the unauthenticated count. */
  authenticated(): void;
}

/**
 * An admitted socket's place in the counts, kept on the socket itself (a ticket object per connection
 * cost it ~64 bytes): pending while it has a deadline to authenticate, counted while it has a key.
 */
export interface Admitted {
  /** @internal the admission's: the address key it is counted under; undefined once it left the counts. */
  admissionKey: string | undefined;
  /**
   * @internal the admission's: its deadline to authenticate in the admission's queue, owning what runs
   * when it comes; only while the socket is pending, so that an authenticated connection holds none.
   */
  authDeadline: Deadline<() => void> | undefined;
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

export class ConnectionAdmission {
  readonly #limits: AdmissionLimits;
  readonly #perAddress = new Map<string, number>();
  readonly #unauthenticatedPerAddress = new Map<string, number>();
  #unauthenticated = 0;
  /**
   * Every pending socket's deadline to authenticate, on one timer: a setTimeout per socket (armed at
   * the upgrade, cleared in the same tick when the token came in the URL) cost every connect a Timeout
   * and two trips through Node's timer lists; here it costs a Deadline and a heap push and removal.
   */
  readonly #deadlines = new DeadlineQueue<Deadline<() => void>>(
    // A deadline still scheduled when it comes is a socket still pending: leaving pending cancels it.
    (deadline) => deadline.owner(),
    // Like the per-socket timers it replaces: a pending socket's deadline keeps no process alive.
    { unref: true },
  );

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Sockets admitted and not yet authenticated. */
  get unauthenticatedCount(): number {
    return this.#unauthenticated;
  }

  /**
   * Counts a new socket from `address` (undefined), or says which limit refuses it. `onDeadline` runs if
   * the socket is still unauthenticated when its time is up (the caller closes it).
   */
  admit(address: string, socket: Admitted, onDeadline: () => void): Refusal | undefined {
    const key = addressKey(address);
    const { perAddress, unauthenticated, unauthenticatedPerAddress, authTimeoutMs } = this.#limits;
    if (perAddress > 0 && (this.#perAddress.get(key) ?? 0) >= perAddress) {
      return {
        limit: 'max_connections_per_ip',
        max: perAddress,
        message: `too many connections from this address (at most ${perAddress}); retry later`,
      };
    }
    if (
      unauthenticatedPerAddress > 0 &&
      (this.#unauthenticatedPerAddress.get(key) ?? 0) >= unauthenticatedPerAddress
    ) {
      return {
        limit: 'max_unauthenticated_connections_per_ip',
        max: unauthenticatedPerAddress,
        message: `too many connections from this address waiting to authenticate (at most ${unauthenticatedPerAddress}); authenticate them or retry later`,
      };
    }
    if (unauthenticated > 0 && this.#unauthenticated >= unauthenticated) {
      return {
        limit: 'max_unauthenticated_connections',
        max: unauthenticated,
        message: 'too many connections waiting to authenticate; retry later',
      };
    }
    this.#perAddress.set(key, (this.#perAddress.get(key) ?? 0) + 1);
    this.#unauthenticatedPerAddress.set(key, (this.#unauthenticatedPerAddress.get(key) ?? 0) + 1);
    this.#unauthenticated++;
    const deadline = new Deadline(onDeadline);
    this.#deadlines.schedule(deadline, Date.now() + authTimeoutMs);
    socket.admissionKey = key;
    socket.authDeadline = deadline;
    return undefined;
  }

  /** The socket has authenticated: it leaves the unauthenticated counts (once; not after it left). */
  authenticated(socket: Admitted): void {
    const key = socket.admissionKey;
    if (key !== undefined && socket.authDeadline !== undefined) this.#leavePending(socket, key);
  }

  /** The socket closed: it leaves every count; safe to call twice. */
  release(socket: Admitted): void {
    const key = socket.admissionKey;
    if (key === undefined) return;
    if (socket.authDeadline !== undefined) this.#leavePending(socket, key);
    socket.admissionKey = undefined;
    decrement(this.#perAddress, key);
  }

  #leavePending(socket: Admitted, key: string): void {
    this.#deadlines.cancel(socket.authDeadline!);
    socket.authDeadline = undefined;
    this.#unauthenticated--;
    decrement(this.#unauthenticatedPerAddress, key);
  }
}
