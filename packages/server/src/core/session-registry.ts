/**
 * Every authenticated WebSocket session of the server, whatever its endpoint: who it is, where from,
 * and how to end it. Logout, a password change, disabling or deleting a user, and an administrator's
 * kill all end sessions through here, at once (the socket is closed in the same tick).
 */
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '@rustydb/protocol';
import type { Principal } from '../auth/authenticator.ts';

/**
 * An order to end sessions: a user's, those that presented a credential (a token or login id), or one
 * session. Nodes sharing a database pass them to each other (SessionRelay).
 */
export interface EndOrder {
  scope: 'user' | 'credential' | 'session';
  id: string;
  code: ErrorCode;
  message: string;
  reason: string;
}

/** Where a registry sends the orders it carried out, for the sessions of the other nodes. */
export interface SessionRelay {
  ended(order: EndOrder): void;
  /** Ends one session held by another node; resolves with its user, or undefined when none holds it. */
  endElsewhere(order: EndOrder): Promise<string | undefined>;
  /** The sessions the other nodes hold, and how many nodes did not answer in time. */
  listElsewhere(filter: SessionFilter): Promise<SessionList>;
}

export interface SessionFilter {
  user?: string;
}

export interface SessionList {
  sessions: SessionInfo[];
  /**
   * Nodes sharing the database that did not answer in time: their sessions are missing. null when the
   * database could not be reached, so that the other nodes could be neither asked nor counted.
   */
  unanswered: number | null;
}

/**
 * What the registry needs from a session: to end it (send an error, no id, then close 1008), and the
 * bytes waiting to be sent on its socket (how far behind its client is). A session object itself, where
 * it has both (two closures per connection cost it ~150 bytes).
 */
export interface RegisteredSession {
  terminate(code: ErrorCode, message: string, reason: string): void;
  bufferedAmount(): number;
}

export interface SessionInfo {
  id: string;
  /** The node holding the session (SessionRegistry.node). */
  node: string;
  user: string;
  remote_address: string;
  endpoint: string;
  connected_at: string;
  authenticated_at: string;
  /** When the session's token expires, ISO 8601; null when authentication is off. */
  expires_at: string | null;
  /** Bytes waiting to be sent to the client now. */
  queued_bytes: number;
}

interface Entry {
  id: string;
  endpoint: string;
  remoteAddress: string;
  /** Milliseconds since the epoch: a number costs a connection far less than a Date. */
  connectedAt: number;
  authenticatedAt: number;
  user: string;
  /**
   * Every token and every login the session has presented (it may re-authenticate with refreshed
   * tokens): revoking any of them ends it. A few, so an array (a Set costs a connection ~150 bytes more).
   */
  credentials: string[];
  expiresAt: number | undefined;
  session: RegisteredSession;
}

/**
 * A random UUID held as one flat string. Node builds randomUUID() by concatenation, and the rope of
 * about fourteen pieces it returns would stay one for the session's whole life: about 450 bytes per
 * connection instead of about 60.
 */
function sessionId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/** A session's place in the registry; it joins on its first successful authentication. */
export class SessionHandle {
  readonly id = sessionId();
  readonly #registry: SessionRegistry;
  readonly endpoint: string;
  readonly remoteAddress: string;
  /** Milliseconds since the epoch. */
  readonly connectedAt = Date.now();
  readonly session: RegisteredSession;

  constructor(
    registry: SessionRegistry,
    endpoint: string,
    remoteAddress: string,
    session: RegisteredSession,
  ) {
    this.#registry = registry;
    this.endpoint = endpoint;
    this.remoteAddress = remoteAddress;
    this.session = session;
  }

  /**
   * Records the session as belonging to `principal` (again, after a re-authentication with a new token
   * of the same user: the endpoints refuse another user). False when that would exceed the user's
   * connection limit; the session is then not registered.
   */
  authenticated(principal: Principal): boolean {
    return this.#registry.admit(this, principal);
  }

  /** Leaves the registry; safe to call twice. */
  release(): void {
    this.#registry.remove(this.id);
  }
}

export class SessionRegistry {
  /** This node's id among those sharing a database: random, new at every start. */
  readonly node = randomUUID();
  readonly #maxPerUser: number;
  readonly #sessions = new Map<string, Entry>();
  readonly #byUser = new Map<string, Set<string>>();
  #relay: SessionRelay | undefined;

  /** @param maxPerUser authenticated sessions one user may hold at once; 0 for no limit */
  constructor(maxPerUser: number) {
    this.#maxPerUser = maxPerUser;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get maxPerUser(): number {
    return this.#maxPerUser;
  }

  /** A handle for a new connection; it is listed only once it authenticates. */
  open(endpoint: string, remoteAddress: string, session: RegisteredSession): SessionHandle {
    return new SessionHandle(this, endpoint, remoteAddress, session);
  }

  /** @internal used by SessionHandle */
  admit(handle: SessionHandle, principal: Principal): boolean {
    const { user } = principal;
    const existing = this.#sessions.get(handle.id);
    const sameUser = existing?.user === user;
    if (!sameUser && this.#maxPerUser > 0 && this.countFor(user) >= this.#maxPerUser) {
      this.remove(handle.id);
      return false;
    }
    if (existing && !sameUser) this.remove(handle.id);
    const credentials = sameUser ? existing.credentials : [];
    for (const credential of [principal.tokenId, principal.loginId]) {
      if (credential && !credentials.includes(credential)) credentials.push(credential);
    }
    this.#sessions.set(handle.id, {
      id: handle.id,
      endpoint: handle.endpoint,
      remoteAddress: handle.remoteAddress,
      connectedAt: handle.connectedAt,
      authenticatedAt: Date.now(),
      user,
      credentials,
      expiresAt: principal.expiresAt,
      session: handle.session,
    });
    let ids = this.#byUser.get(user);
    if (!ids) this.#byUser.set(user, (ids = new Set()));
    ids.add(handle.id);
    return true;
  }

  /** @internal used by SessionHandle */
  remove(id: string): void {
    const entry = this.#sessions.get(id);
    if (!entry) return;
    this.#sessions.delete(id);
    const ids = this.#byUser.get(entry.user);
    ids?.delete(id);
    if (ids?.size === 0) this.#byUser.delete(entry.user);
  }

  countFor(user: string): number {
    return this.#byUser.get(user)?.size ?? 0;
  }

  /** The sessions of this node. */
  list(filter: SessionFilter = {}): SessionInfo[] {
    const entries =
      filter.user === undefined
        ? [...this.#sessions.values()]
        : [...(this.#byUser.get(filter.user) ?? [])].map((id) => this.#sessions.get(id)!);
    return entries.map((e) => ({
      id: e.id,
      node: this.node,
      user: e.user,
      remote_address: e.remoteAddress,
      endpoint: e.endpoint,
      connected_at: new Date(e.connectedAt).toISOString(),
      authenticated_at: new Date(e.authenticatedAt).toISOString(),
      expires_at: e.expiresAt === undefined ? null : new Date(e.expiresAt).toISOString(),
      queued_bytes: e.session.bufferedAmount(),
    }));
  }

  get(id: string): SessionInfo | undefined {
    const entry = this.#sessions.get(id);
    return entry ? this.list({ user: entry.user }).find((s) => s.id === id) : undefined;
  }

  /** The sessions of this node and of every other node sharing the database that answers in time. */
  async listEverywhere(filter: SessionFilter = {}): Promise<SessionList> {
    const here = this.list(filter);
    if (!this.#relay) return { sessions: here, unanswered: 0 };
    const elsewhere = await this.#relay.listElsewhere(filter);
    return { sessions: [...here, ...elsewhere.sessions], unanswered: elsewhere.unanswered };
  }

  /** Sends every order carried out here to the other nodes sharing the database. */
  relayTo(relay: SessionRelay): void {
    this.#relay = relay;
  }

  /** Ends one session of this node; false when there is no such session. */
  kill(id: string, code: ErrorCode, message: string, reason: string): boolean {
    const entry = this.#sessions.get(id);
    if (!entry) return false;
    this.remove(id);
    entry.session.terminate(code, message, reason);
    return true;
  }

  /**
   * Ends one session, on this node or another sharing the database; resolves with its user, or
   * undefined when no node holds it.
   */
  async killAnywhere(
    id: string,
    code: ErrorCode,
    message: string,
    reason: string,
  ): Promise<string | undefined> {
    const user = this.#sessions.get(id)?.user;
    if (user !== undefined && this.kill(id, code, message, reason)) return user;
    return this.#relay?.endElsewhere({ scope: 'session', id, code, message, reason });
  }

  /** Ends every session of a user, here and on the other nodes; returns how many were here. */
  killUser(user: string, code: ErrorCode, message: string, reason: string): number {
    return this.#endEverywhere({ scope: 'user', id: user, code, message, reason });
  }

  /**
   * Ends every session that ever presented the token or a token of the login `id` (a token id or a
   * login id), here and on the other nodes; returns how many were here.
   */
  killCredential(id: string, code: ErrorCode, message: string, reason: string): number {
    return this.#endEverywhere({ scope: 'credential', id, code, message, reason });
  }

  #endEverywhere(order: EndOrder): number {
    const closed = this.apply(order);
    this.#relay?.ended(order);
    return closed;
  }

  /** Carries out an order on this node's sessions (from this node or another); returns how many ended. */
  apply(order: EndOrder): number {
    const { scope, id, code, message, reason } = order;
    const ids =
      scope === 'session'
        ? [id]
        : scope === 'user'
          ? [...(this.#byUser.get(id) ?? [])]
          : [...this.#sessions.values()].filter((e) => e.credentials.includes(id)).map((e) => e.id);
    return ids.filter((sessionId) => this.kill(sessionId, code, message, reason)).length;
  }
}
