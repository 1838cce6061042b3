/** What every GraphQL resolver is given: who is asking, on which connection, and how to stop. */
import type { Principal } from '../auth/authenticator.ts';
import type { Caller, Engine } from '../engine/engine.ts';
import type { ServerConfig } from '../config/config.ts';
import type { Logger } from '../core/logger.ts';
import type { AccessControl } from '../auth/access-control.ts';
import type { SubscriptionHub } from '../changes/subscription-hub.ts';
import type { MetricsSampler } from '../metrics/sampler.ts';

export interface GraphQLContext {
  principal: Principal;
  /** Who the engine runs the operation's statements as (AccessControl.callerFor), taken per operation. */
  caller: Caller;
  /** Unique per graphql-ws connection (its session id) or HTTP request. */
  sessionId: string;
  /** The graphql-ws operation id (subscriptions are registered in the hub under it). */
  operationId: string;
  /** Bytes queued on the connection and not yet sent (0 over HTTP). */
  bufferedAmount(): number;
  /** Fires when the request or connection goes away: running statements are interrupted. */
  signal?: AbortSignal;
  /**
   * graphql-ws only: sends this operation a `next` message whose payload is the given JSON (UTF-8
   * bytes, shared with other subscribers: not to be changed), at once — what graphql-ws would send for
   * that result, without its per-result promise chain.
   */
  sendNext?: (payload: Buffer) => void;
}

/** The server parts resolvers run on. */
export interface GraphQLDeps {
  /** The audited, metered engine every surface uses. */
  engine: Engine;
  hub: SubscriptionHub;
  access: AccessControl;
  sampler: MetricsSampler;
  config: ServerConfig;
  logger: Logger;
}
