/**
 * Which new WebSockets may stay open: connections per client address, connections that have not
 * authenticated yet (per address and in total), and the deadline to authenticate. Unauthenticated sockets
 * cost an attacker nothing but a TCP handshake, so they get a small share of the server and little time;
 * once a socket authenticates, only the per-address and per-user limits apply to it.
 */
import { addressKey } from '../core/client-address.ts';

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
  #timer: NodeJS.Timeout | undefined;
  #state: 'pending' | 'authenticated' | 'released' = 'pending';

  constructor(owner: ConnectionAdmission, key: string, timer: NodeJS.Timeout) {
    this.#owner = owner;
    this.key = key;
    this.#timer = timer;
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
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#owner.authenticatedOrGone(this.key);
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
    const timer = setTimeout(onDeadline, authTimeoutMs);
    timer.unref();
    return new AdmissionTicket(this, key, timer);
  }

  /** @internal for AdmissionTicket: the socket left the unauthenticated count. */
  authenticatedOrGone(key: string): void {
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
