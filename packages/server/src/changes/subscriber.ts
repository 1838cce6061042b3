/** What a subscription needs from the connection that owns it, whatever the endpoint. */
export interface SubscriberOwner {
  /** Unique per connection; with the subscription id it names a subscription server-wide. */
  readonly sessionId: string;
  readonly user: string;
  send(text: string): void;
  /** Bytes queued on the connection and not yet sent. */
  bufferedAmount(): number;
}
