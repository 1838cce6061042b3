/**
 * A client process of the GraphQL subscription benchmark: holds its share of the subscribers, each a
 * graphql-ws client (the `graphql-ws` package on `ws`) with its own connection and its own variables,
 * and takes orders from the bench over IPC: open, arm for a round, close. It reports a round complete
 * once every subscriber has seen an event with `v` at or past the round, stamped on the clock every
 * process shares (`performance.timeOrigin + performance.now()`). Each write bumps every row or item by
 * one, so each subscriber must see `v` go 1, 2, 3… one event per round: any other step (a gap, a
 * repeat, a step back) is counted as an anomaly, and `verify` reports them with who is behind.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export type SubscriberCommand =
  | {
      cmd: 'open';
      url: string;
      connectionParams?: Record<string, unknown>;
      query: string;
      /** One entry per subscriber. */
      variables: Record<string, unknown>[];
      /** Where the event's round number is: `rowUpdated.row.v` or `itemUpdated.v`. */
      path: string[];
      concurrency: number;
    }
  | { cmd: 'arm'; round: number }
  /** Answers VerifyResult: every subscriber must be at `round`, having seen each round's event once. */
  | { cmd: 'verify'; round: number }
  | { cmd: 'close' };

export interface VerifyResult {
  subscribers: number;
  events: number;
  /** Events that were not exactly one round after the subscriber's previous one. */
  anomalies: number;
  /** Subscribers whose last event is not the round asked about. */
  behind: number;
  /** Subscription errors received. */
  errors: number;
}

export type SubscriberReply =
  | { seq: number; ok: true; result: unknown }
  | { seq: number; ok: false; error: string }
  | { event: 'complete'; round: number; at: number; received: number };

const now = (): number => performance.timeOrigin + performance.now();

const clients: Client[] = [];
let last: Int32Array = new Int32Array(0);
let target = Infinity;
let reached = 0;
let events = 0;
let errors = 0;
let anomalies = 0;

function send(message: SubscriberReply): void {
  process.send?.(message);
}

function valueAt(data: unknown, path: readonly string[]): number {
  let at: unknown = data;
  for (const key of path) at = (at as Record<string, unknown> | null)?.[key];
  return Number(at);
}

async function open(command: Extract<SubscriberCommand, { cmd: 'open' }>): Promise<unknown> {
  const started = performance.now();
  last = new Int32Array(command.variables.length);
  let next = 0;
  const openOne = async (): Promise<void> => {
    for (let i = next++; i < command.variables.length; i = next++) {
      const index = i;
      await new Promise<void>((resolve, reject) => {
        const client = createClient({
          url: command.url,
          webSocketImpl: WebSocket,
          ...(command.connectionParams ? { connectionParams: command.connectionParams } : {}),
          lazy: false,
          retryAttempts: 0,
          keepAlive: 0,
          onNonLazyError: (err) =>
            reject(new Error(`connection failed: ${String((err as { code?: number }).code ?? err)}`)),
          on: { connected: () => resolve() },
        });
        clients.push(client);
        client.subscribe(
          { query: command.query, variables: command.variables[index]! },
          {
            next: (result) => {
              events++;
              const v = valueAt(result.data, command.path);
              if (v !== last[index]! + 1) anomalies++;
              if (v >= target && last[index]! < target) {
                reached++;
                if (reached === last.length)
                  send({ event: 'complete', round: target, at: now(), received: reached });
              }
              if (v > last[index]!) last[index] = v;
            },
            error: () => errors++,
            complete: () => undefined,
          },
        );
      });
    }
  };
  await Promise.all(Array.from({ length: command.concurrency }, openOne));
  return { opened: clients.length, ms: performance.now() - started };
}

process.on('message', (message: SubscriberCommand & { seq: number }) => {
  const reply = (result: Promise<unknown> | unknown): void => {
    Promise.resolve(result).then(
      (value) => send({ seq: message.seq, ok: true, result: value }),
      (err: unknown) => send({ seq: message.seq, ok: false, error: (err as Error).message ?? String(err) }),
    );
  };
  switch (message.cmd) {
    case 'open':
      reply(open(message));
      return;
    case 'arm':
      target = message.round;
      reached = 0;
      for (const v of last) if (v >= target) reached++;
      reply({ armed: target, already: reached, events, errors });
      if (reached === last.length) send({ event: 'complete', round: target, at: now(), received: reached });
      return;
    case 'verify': {
      let behind = 0;
      for (const v of last) if (v !== message.round) behind++;
      const result: VerifyResult = { subscribers: last.length, events, anomalies, behind, errors };
      reply(result);
      return;
    }
    case 'close':
      reply(
        Promise.all(clients.map((c) => c.dispose())).then(() => ({ closed: clients.length, events, errors })),
      );
      setTimeout(() => process.exit(0), 200).unref();
      return;
  }
});
send({ seq: 0, ok: true, result: 'ready' });
