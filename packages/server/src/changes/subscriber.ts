import type { ServerMessageType } from '@rustydb/protocol';

/** What a subscription needs from the connection that owns it, whatever the endpoint. */
export interface SubscriberOwner {
  /** Unique per connection; with the subscription id it names a subscription server-wide. */
  readonly sessionId: string;
  readonly user: string;
  /** Sends one message of a subscription (the owner frames it for its transport). */
  deliver(type: ServerMessageType, payload: unknown, id: string): void;
  /**
   * Sends one message of a subscription whose payload object goes to many subscribers (it is not
   * changed): `tail` is `idTail(id)`, made once per subscription. An owner without it is sent `deliver`.
   */
  deliverShared?(type: ServerMessageType, payload: object, id: string, tail: string): void;
  /** Bytes queued on the connection and not yet sent. */
  bufferedAmount(): number;
}
