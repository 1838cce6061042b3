/**
 * The subscriptions of one connection: turns `subscribe` / `unsubscribe` messages into calls on the
 * server-wide SubscriptionHub, answers failures with an error carrying the subscription id, and ends
 * everything when the connection closes.
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

  constructor(hub: SubscriptionHub, owner: SubscriberOwner, logger: Logger) {
    this.#hub = hub;
    this.#owner = owner;
    this.#logger = logger;
  }

  async subscribe(message: SubscribeMessage, principal: Principal): Promise<void> {
    try {
      await this.#hub.subscribe(this.#owner, message, principal);
    } catch (err) {
      const failure = normalizeError(err, (e) => this.#logger.error('subscribe failed', describeError(e)));
      this.#owner.deliver('error', errorPayload(failure.code, failure.message, failure.details), message.id);
    }
  }

  async watch(message: WatchMessage, collection: string | undefined, principal: Principal): Promise<void> {
    try {
      if (!collection)
        throw new RustyError('INVALID_MESSAGE', "payload.collection: a watch needs the collection's name");
      await this.#hub.watch(this.#owner, message, collection, principal);
    } catch (err) {
      const failure = normalizeError(err, (e) => this.#logger.error('watch failed', describeError(e)));
      this.#owner.deliver('error', errorPayload(failure.code, failure.message, failure.details), message.id);
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
