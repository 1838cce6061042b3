/**
 * The subscriptions of one connection: turns `subscribe` / `unsubscribe` messages into calls on the
 * server-wide SubscriptionHub, answers failures with an error carrying the subscription id, and ends
 * everything when the connection closes. A connection holds at most `limit` subscriptions at once (0: no
 * limit): each one costs the server memory and work on every change, and a client that never reads must
 * not be able to pile them up.
 */
import type { SubscribeMessage, WatchMessage } from '@rustydb/protocol';
import type { Principal } from '../auth/authenticator.ts';
import type { SubscriptionHub } from '../changes/subscription-hub.ts';
import type { SubscriberOwner } from '../changes/subscriber.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import { errorPayload } from './envelope.ts';
import { describeError, type Logger } from './logger.ts';

export class SessionSubscriptions {
  readonly #hub: SubscriptionHub;
  readonly #owner: SubscriberOwner;
  readonly #logger: Logger;
  readonly #limit: number;
  /** Subscriptions being set up (not yet counted by the hub): they count toward the limit too. */
  #starting = 0;

  constructor(hub: SubscriptionHub, owner: SubscriberOwner, logger: Logger, limit: number) {
    this.#hub = hub;
    this.#owner = owner;
    this.#logger = logger;
    this.#limit = limit;
  }

  subscribe(message: SubscribeMessage, principal: Principal): Promise<void> {
    return this.#start(message.id, 'subscribe', () => this.#hub.subscribe(this.#owner, message, principal));
  }

  watch(message: WatchMessage, collection: string | undefined, principal: Principal): Promise<void> {
    return this.#start(message.id, 'watch', () => {
      if (!collection)
        throw new RustyError('INVALID_MESSAGE', "payload.collection: a watch needs the collection's name");
      return this.#hub.watch(this.#owner, message, collection, principal);
    });
  }

  /** Sets a subscription up within the limit; a failure is the error message of its id. */
  async #start(id: string, kind: string, setUp: () => Promise<void>): Promise<void> {
    try {
      if (this.#limit > 0 && this.#hub.countOf(this.#owner) + this.#starting >= this.#limit) {
        throw new RustyError(
          'RATE_LIMIT_EXCEEDED',
          `a connection may hold at most ${this.#limit} subscriptions (max_subscriptions_per_connection): unsubscribe one first`,
        );
      }
      this.#starting++;
      try {
        await setUp();
      } finally {
        this.#starting--;
      }
    } catch (err) {
      const failure = normalizeError(err, (e) => this.#logger.error(`${kind} failed`, describeError(e)));
      this.#owner.deliver('error', errorPayload(failure.code, failure.message, failure.details), id);
    }
  }

  unsubscribe(id: string): void {
    if (!this.#hub.unsubscribe(this.#owner, id)) {
      this.#owner.deliver(
        'error',
        errorPayload('NOT_FOUND', `no subscription '${id}' on this connection`),
        id,
      );
    }
  }

  close(): void {
    this.#hub.dropOwner(this.#owner);
  }
}
