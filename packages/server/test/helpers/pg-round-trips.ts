/**
 * Round trips to PostgreSQL, counted on the wire: a TCP proxy in front of the tests' PostgreSQL that
 * counts, per connection, how often the client writes after having heard from the server (or writes
 * first). Messages a client sends in one go, however many writes they take, count once; each wait for
 * an answer before sending more counts again. Each connection is known by the user its start-up
 * message names, so a test counts the connections of the session roles apart from the server's own.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Connection {
  user: string | undefined;
  turns: number;
  lastFrom: 'client' | 'server' | undefined;
}

export interface RoundTripProxy {
  /** `databaseUrl` with its host and port replaced by the proxy's. */
  url(databaseUrl: string): string;
  /** Starts counting afresh. */
  reset(): void;
  /** Round trips since the last reset, per connection (of those with any), with the user they logged in as. */
  counts(): { user: string; roundTrips: number }[];
  close(): Promise<void>;
}

/** The user named in a connection's start-up message (protocol 3.0: length, version, key/value pairs). */
function startupUser(first: Buffer): string | undefined {
  const fields = first.subarray(8).toString('utf8').split('\0');
  const at = fields.indexOf('user');
  return at >= 0 ? fields[at + 1] : undefined;
}

/** A proxy to the PostgreSQL server at `host`:`port`, on a free port of 127.0.0.1. */
export async function roundTripProxy(host: string, port: number): Promise<RoundTripProxy> {
  const connections = new Set<Connection>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const state: Connection = { user: undefined, turns: 0, lastFrom: undefined };
    connections.add(state);
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk: Buffer) => {
      state.user ??= startupUser(chunk);
      if (state.lastFrom !== 'client') state.turns++;
      state.lastFrom = 'client';
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      state.lastFrom = 'server';
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as { port: number };
  return {
    url: (databaseUrl) => {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(proxyPort);
      return url.toString();
    },
    reset: () => {
      for (const connection of connections) connection.turns = 0;
    },
    counts: () =>
      [...connections]
        .filter((connection) => connection.turns > 0)
        .map((connection) => ({ user: connection.user ?? '', roundTrips: connection.turns })),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
