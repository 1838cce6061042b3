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

/** One admitted socket's place in the counts; `release` (on close) is safe to call twice. */
export class AdmissionTicket implements Admission {
  readonly #owner: ConnectionAdmission;
  readonly key: string;
  /**
   * Its deadline to authenticate in the owner's queue, owning what runs when it comes: only while the
   * socket is pending, so that an authenticated connection holds neither for its whole life.
   */
  #deadline: Deadline<() => void> | undefined;
  #state: 'pending' | 'authenticated' | 'released' = 'pending';

  constructor(owner: ConnectionAdmission, key: string, deadline: Deadline<() => void>) {
    this.#owner = owner;
    this.key = key;
    this.#deadline = deadline;
  }

  get pending(): boolean {
    return this.#state === 'pending';
  }

  authenticated(): void {
    if (this.#state !== 'pending') return;
    this.#state = 'authenticated';
    this.#leavePending();
  }

  release(): void {
    if (this.#state === 'released') return;
    if (this.#state === 'pending') this.#leavePending();
    this.#state = 'released';
    this.#owner.left(this.key);
  }

  #leavePending(): void {
    this.#owner.authenticatedOrGone(this.key, this.#deadline);
    this.#deadline = undefined;
  }
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
  readonly #deadlines = new DeadlineQueue<() => void>(
    // A deadline still scheduled when it comes is a socket still pending: leaving pending cancels it.
    (onDeadline) => onDeadline(),
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
   * Counts a new socket from `address`, or says which limit refuses it. `onDeadline` runs if the socket
   * is still unauthenticated when its time is up (the caller closes it).
   */
  admit(address: string, onDeadline: () => void): AdmissionTicket | Refusal {
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
    return new AdmissionTicket(this, key, deadline);
  }

  /** @internal for AdmissionTicket: the socket left the unauthenticated count. */
  authenticatedOrGone(key: string, deadline: Deadline<() => void> | undefined): void {
    if (deadline) this.#deadlines.cancel(deadline);
    this.#unauthenticated--;
    decrement(this.#unauthenticatedPerAddress, key);
  }

  /** @internal for AdmissionTicket: the socket closed. */
  left(key: string): void {
    decrement(this.#perAddress, key);
  }
}

export function isRefusal(outcome: AdmissionTicket | Refusal): outcome is Refusal {
  return !(outcome instanceof AdmissionTicket);
}
