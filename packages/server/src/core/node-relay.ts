/**
 * What one node does that must take effect on every node sharing the database: ending sessions
 * (logout, logout everywhere, a password change, a disabled or deleted user, an administrator's kill)
 * and changes to users, roles or grants (subscriptions no longer allowed end with PERMISSION_DENIED).
 * Each is published as a node event once the database holds the change; every other node carries it
 * out on its own sessions and subscriptions, as the publishing node did on its own.
 *
 * The list of sessions is a request every other node answers with its own: the asking node waits for
 * as many answers as nodes listen now (NodeEvents.peers), at most LIST_WAIT_MS.
 */
import { randomUUID } from 'node:crypto';
import type { NodeEvent, NodeEvents } from '../engine/engine.ts';
import type { AccessControl } from '../auth/access-control.ts';
import { describeError, type Logger } from './logger.ts';
import type {
  EndOrder,
  SessionFilter,
  SessionInfo,
  SessionList,
  SessionRegistry,
  SessionRelay,
} from './session-registry.ts';

/** How long a kill of a session held by no node of this one waits for another node to say it ended it. */
const REPLY_WAIT_MS = 1000;
/** How long a list of sessions waits for the other nodes' answers; those later are counted missing. */
const LIST_WAIT_MS = 1000;

type RelayEvent =
  | { kind: 'privileges' }
  | { kind: 'end'; order: EndOrder; request?: string }
  | { kind: 'ended'; request: string; user: string }
  | { kind: 'list'; request: string; filter: SessionFilter }
  | { kind: 'listed'; request: string; sessions: SessionInfo[] };

export interface NodeRelayDeps {
  events: NodeEvents;
  sessions: SessionRegistry;
  access: AccessControl;
  /** Forgets what the engine cached of the privileges (Engine.forgetPrivileges). */
  forgetPrivileges: () => void;
  logger: Logger;
}

export class NodeRelay implements SessionRelay {
  readonly #deps: NodeRelayDeps;
  /** Kills of a session held elsewhere, by request id, waiting for the node that held it. */
  readonly #waiting = new Map<string, (user: string | undefined) => void>();
  /** Lists of sessions, by request id, gathering the other nodes' answers. */
  readonly #listing = new Map<string, (sessions: SessionInfo[] | undefined) => void>();
  readonly #stop: () => void;

  constructor(deps: NodeRelayDeps) {
    this.#deps = deps;
    this.#stop = deps.events.onEvent((event) => this.#receive(event as RelayEvent));
    deps.sessions.relayTo(this);
    deps.access.relayTo(() => this.#publish({ kind: 'privileges' }));
  }

  ended(order: EndOrder): void {
    this.#publish({ kind: 'end', order }).catch((err: unknown) =>
      this.#deps.logger.warn('telling the other nodes to end sessions failed', describeError(err)),
    );
  }

  endElsewhere(order: EndOrder): Promise<string | undefined> {
    const request = randomUUID();
    return new Promise((resolve, reject) => {
      const settle = (user: string | undefined): void => {
        clearTimeout(timer);
        this.#waiting.delete(request);
        resolve(user);
      };
      const timer = setTimeout(() => settle(undefined), REPLY_WAIT_MS);
      this.#waiting.set(request, settle);
      this.#publish({ kind: 'end', order, request }).catch((err: unknown) => {
        clearTimeout(timer);
        this.#waiting.delete(request);
        reject(err);
      });
    });
  }

  async listElsewhere(filter: SessionFilter): Promise<SessionList> {
    // The other nodes are counted and asked through the database: while it is unreachable they can be
    // neither, and the list holds this node's sessions only, saying the others are missing (null: how
    // many is unknown) rather than failing the whole request.
    let expected: number;
    try {
      expected = await this.#deps.events.peers();
    } catch (err) {
      this.#deps.logger.warn('counting the other nodes for a list of sessions failed', describeError(err));
      return { sessions: [], unanswered: null };
    }
    if (expected === 0) return { sessions: [], unanswered: 0 };
    const request = randomUUID();
    const sessions: SessionInfo[] = [];
    let answers = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), LIST_WAIT_MS);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listing.delete(request);
        resolve();
      };
      this.#listing.set(request, (answer) => {
        // undefined: the relay closes.
        if (answer === undefined) return finish();
        sessions.push(...answer);
        answers += 1;
        if (answers >= expected) finish();
      });
      this.#publish({ kind: 'list', request, filter }).catch((err: unknown) => {
        // No node was asked: all of them count as unanswered.
        this.#deps.logger.warn('asking the other nodes for their sessions failed', describeError(err));
        finish();
      });
    });
    return { sessions, unanswered: Math.max(0, expected - answers) };
  }

  close(): void {
    this.#stop();
    for (const settle of [...this.#waiting.values()]) settle(undefined);
    for (const settle of [...this.#listing.values()]) settle(undefined);
  }

  #publish(event: RelayEvent): Promise<void> {
    return this.#deps.events.publish(event as unknown as NodeEvent);
  }

  #receive(event: RelayEvent): void {
    const { sessions, access } = this.#deps;
    if (event.kind === 'privileges') {
      this.#deps.forgetPrivileges();
      access.changedElsewhere();
    } else if (event.kind === 'end') {
      const user = event.order.scope === 'session' ? sessions.get(event.order.id)?.user : undefined;
      const closed = sessions.apply(event.order);
      // Only the node that held the session answers a kill of one session.
      if (event.request && user !== undefined && closed > 0) {
        this.#publish({ kind: 'ended', request: event.request, user }).catch((err: unknown) =>
          this.#deps.logger.warn('answering a kill from another node failed', describeError(err)),
        );
      }
    } else if (event.kind === 'ended') {
      this.#waiting.get(event.request)?.(event.user);
    } else if (event.kind === 'list') {
      this.#publish({ kind: 'listed', request: event.request, sessions: sessions.list(event.filter) }).catch(
        (err: unknown) =>
          this.#deps.logger.warn('answering a list of sessions from another node failed', describeError(err)),
      );
    } else if (event.kind === 'listed') {
      this.#listing.get(event.request)?.(event.sessions);
    }
  }
}
