/**
 * Every authenticated WebSocket session of the server, whatever its endpoint: who it is, where from,
 * and how to end it. Logout, a password change, disabling or deleting a user, and an administrator's
 * kill all end sessions through here, at once (the socket is closed in the same tick).
 */
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '@rustydb/protocol';
import type { Principal } from '../auth/authenticator.ts';
import { epochOf, sinceStart } from './process-clock.ts';

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

/**
 * A random UUID held as one flat string. Node builds randomUUID() by concatenation, and the rope of
 * about fourteen pieces it returns would stay one for the session's whole life: about 450 bytes per
 * connection instead of about 60.
 */
function sessionId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/**
 * A session's place in the registry; it joins on its first successful authentication. The entry is
 * what the registry lists and ends, and a session that extends it (StreamSession) is its own entry: a
 * separate entry object cost every authenticated connection ~100 bytes (and before that, an entry
 * with its own copy of the credentials and times, ~200).
 */
export abstract class RegistryEntry implements RegisteredSession {
  /** Made when first asked for (listed, audited, killed by id): most sessions are never named. */
  #id: string | undefined = undefined;
  readonly endpoint: string;
  readonly remoteAddress: string;
  /** When it connected (see process-clock.ts: a small number costs a connection far less than a Date). */
  readonly connectedAt = sinceStart();
  /**
   * @internal the registry's: who the session last authenticated as, while it is registered (undefined
   * while it is not).
   */
  registeredAs: Principal | undefined = undefined;
  /** @internal the registry's: when it last authenticated (see process-clock.ts). */
  authenticatedAt = 0;
  /**
   * @internal the registry's: the tokens and logins the session presented before its latest
   * authentication (it may re-authenticate with refreshed tokens): revoking any of them ends it too.
   * Made at the first re-authentication that brings a new one; most sessions never have any.
   */
  earlierCredentials: string[] | undefined = undefined;

  constructor(endpoint: string, remoteAddress: string) {
    this.endpoint = endpoint;
    this.remoteAddress = remoteAddress;
  }

  /**
   * The registry that lists the session once it authenticates; undefined for a session none lists (it
   * is then never limited, listed or ended from outside). Read from where the session has it already
   * (a StreamSession's dependencies): a field of its own cost every connection 8 bytes.
   */
  protected abstract get registry(): SessionRegistry | undefined;
  abstract terminate(code: ErrorCode, message: string, reason: string): void;
  abstract bufferedAmount(): number;

  /** Whether a registry lists the session (once it authenticates). */
  get listed(): boolean {
    return this.registry !== undefined;
  }

  /**
   * Records the session as belonging to `principal` (again, after a re-authentication with a new token
   * of the same user: the endpoints refuse another user). False when that would exceed the user's
   * connection limit; the session is then not registered. True, with nothing recorded, without a registry.
   */
  authenticated(principal: Principal): boolean {
    return this.registry?.admit(this, principal) ?? true;
  }

  /** The session's id: random, unique, the name administrators end it by. */
  get id(): string {
    return (this.#id ??= sessionId());
  }

  /** Whether the session's id is `id` (without making one: an id never made was never handed out). */
  named(id: string): boolean {
    return this.#id === id;
  }

  /** Leaves the registry; safe to call twice. */
  release(): void {
    this.registry?.remove(this);
  }

  /** Whether the session ever presented the token or login `id`. */
  presented(id: string): boolean {
    const principal = this.registeredAs;
    return (
      principal !== undefined &&
      (principal.tokenId === id || principal.loginId === id || this.earlierCredentials?.includes(id) === true)
    );
  }
}

/** The registry's entry for a session that is not one itself (registry.open). */
export class SessionHandle extends RegistryEntry {
  readonly #registry: SessionRegistry;
  readonly #session: RegisteredSession;

  constructor(
    registry: SessionRegistry,
    endpoint: string,
    remoteAddress: string,
    session: RegisteredSession,
  ) {
    super(endpoint, remoteAddress);
    this.#registry = registry;
    this.#session = session;
  }

  protected get registry(): SessionRegistry {
    return this.#registry;
  }

  terminate(code: ErrorCode, message: string, reason: string): void {
    this.#session.terminate(code, message, reason);
  }

  bufferedAmount(): number {
    return this.#session.bufferedAmount();
  }
}

export class SessionRegistry {
  /** This node's id among those sharing a database: random, new at every start. */
  readonly node = randomUUID();
  readonly #maxPerUser: number;
  /**
   * The registered sessions, by user: the one set a session is in (a second set of every session cost
   * each connection its entry there). A session is registered while its `registeredAs` is set.
   */
  readonly #byUser = new Map<string, Set<RegistryEntry>>();
  #size = 0;
  #relay: SessionRelay | undefined;

  /** @param maxPerUser authenticated sessions one user may hold at once; 0 for no limit */
  constructor(maxPerUser: number) {
    this.#maxPerUser = maxPerUser;
  }

  get size(): number {
    return this.#size;
  }

  get maxPerUser(): number {
    return this.#maxPerUser;
  }

  /** A handle for a new connection; it is listed only once it authenticates. */
  open(endpoint: string, remoteAddress: string, session: RegisteredSession): SessionHandle {
    return new SessionHandle(this, endpoint, remoteAddress, session);
  }

  /** Every registered session. */
  *#all(): Generator<RegistryEntry> {
    for (const handles of this.#byUser.values()) yield* handles;
  }

  /** @internal used by RegistryEntry */
  admit(handle: RegistryEntry, principal: Principal): boolean {
    const { user } = principal;
    const previous = handle.registeredAs;
    const registered = previous !== undefined;
    const sameUser = previous?.user === user;
    if (!sameUser && this.#maxPerUser > 0 && this.countFor(user) >= this.#maxPerUser) {
      this.remove(handle);
      return false;
    }
    if (registered && !sameUser) this.remove(handle);
    if (!sameUser) handle.earlierCredentials = undefined;
    else if (previous !== principal) {
      // What the session presented before stays able to end it.
      for (const credential of [previous!.tokenId, previous!.loginId]) {
        if (credential && credential !== principal.tokenId && credential !== principal.loginId) {
          const earlier = (handle.earlierCredentials ??= []);
          if (!earlier.includes(credential)) earlier.push(credential);
        }
      }
    }
    if (!sameUser) this.#size++;
    handle.registeredAs = principal;
    handle.authenticatedAt = sinceStart();
    let handles = this.#byUser.get(user);
    if (!handles) this.#byUser.set(user, (handles = new Set()));
    handles.add(handle);
    return true;
  }

  /** @internal used by RegistryEntry */
  remove(handle: RegistryEntry): void {
    const principal = handle.registeredAs;
    if (principal === undefined) return;
    handle.registeredAs = undefined;
    this.#size--;
    const handles = this.#byUser.get(principal.user);
    handles?.delete(handle);
    if (handles?.size === 0) this.#byUser.delete(principal.user);
  }

  /** The session named `id` (a scan: sessions are found by id only by administrators' orders). */
  #find(id: string): RegistryEntry | undefined {
    for (const handle of this.#all()) if (handle.named(id)) return handle;
    return undefined;
  }

  countFor(user: string): number {
    return this.#byUser.get(user)?.size ?? 0;
  }

  /** The sessions of this node. */
  list(filter: SessionFilter = {}): SessionInfo[] {
    const entries = filter.user === undefined ? [...this.#all()] : [...(this.#byUser.get(filter.user) ?? [])];
    return entries.map((e) => ({
      id: e.id,
      node: this.node,
      user: e.registeredAs!.user,
      remote_address: e.remoteAddress,
      endpoint: e.endpoint,
      connected_at: new Date(epochOf(e.connectedAt)).toISOString(),
      authenticated_at: new Date(epochOf(e.authenticatedAt)).toISOString(),
      expires_at:
        e.registeredAs!.expiresAt === undefined ? null : new Date(e.registeredAs!.expiresAt).toISOString(),
      queued_bytes: e.bufferedAmount(),
    }));
  }

  get(id: string): SessionInfo | undefined {
    const entry = this.#find(id);
    return entry ? this.list({ user: entry.registeredAs!.user }).find((s) => s.id === id) : undefined;
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
    const entry = this.#find(id);
    return entry !== undefined && this.#end(entry, code, message, reason);
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
    const user = this.#find(id)?.registeredAs?.user;
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
    const handles =
      scope === 'session'
        ? [this.#find(id)]
        : scope === 'user'
          ? [...(this.#byUser.get(id) ?? [])]
          : [...this.#all()].filter((e) => e.presented(id));
    return handles.filter((handle) => handle && this.#end(handle, code, message, reason)).length;
  }

  /** Ends a session of this node if it is still registered. */
  #end(handle: RegistryEntry, code: ErrorCode, message: string, reason: string): boolean {
    if (handle.registeredAs === undefined) return false;
    this.remove(handle);
    handle.terminate(code, message, reason);
    return true;
  }
}
