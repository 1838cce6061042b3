import type { ServerMessageType } from '@rustydb/protocol';

/** What a subscription needs from the connection that owns it, whatever the endpoint. */
export interface SubscriberOwner {
  /** Unique per connection; with the subscription id it names a subscription server-wide. */
  readonly sessionId: string;
  readonly user: string;
  /** Sends one message of a subscription (the owner frames it for its transport). */
  deliver(type: ServerMessageType, payload: unknown, id: string): void;
  /** Bytes queued on the connection and not yet sent. */
  bufferedAmount(): number;
}
