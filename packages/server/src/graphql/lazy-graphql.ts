/**
 * The GraphQL layer, loaded at its first use instead of at start: graphql-js, graphql-http, graphql-ws
 * and the schema builder are several MB of heap that a server nobody asks GraphQL of does not need
 * (issue 10, idle memory). The routes exist from the start; the first `/graphql` request or
 * `/graphql/ws` upgrade loads the modules and reads the catalog once, and every later one finds them
 * ready. What each request sees is the same as when everything was loaded at start.
 */
import type { WebSocketServer } from 'ws';
import type { ChangeFeed } from '../changes/change-feed.ts';
import type { GraphQLDeps } from './context.ts';
import type { GraphQLService } from './graphql-service.ts';
import type { GraphQLWsDeps } from './ws-endpoint.ts';

export interface LazyGraphQLDeps {
  service: GraphQLDeps;
  feed: ChangeFeed;
  /** The gateway's server for `/graphql/ws` (its upgrades wait for `prepareWs`). */
  wss: WebSocketServer;
  ws: Omit<GraphQLWsDeps, 'service'>;
}

/**
 * `load` run once, on the first call, its promise shared by every caller; a failed load is forgotten,
 * so the next call tries again (a module that failed to load is not a server that may never serve it).
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    }));
}

export class LazyGraphQL {
  readonly #deps: LazyGraphQLDeps;
  readonly #loadOnce = loadOnce(() => this.#load());
  #service: GraphQLService | undefined;
  #closed = false;

  constructor(deps: LazyGraphQLDeps) {
    this.#deps = deps;
  }

  /** The service once loaded (undefined before the first GraphQL request). */
  get loaded(): GraphQLService | undefined {
    return this.#service;
  }

  /** The service, loading the layer on first call; a failed load is tried again by the next call. */
  service(): Promise<GraphQLService> {
    return this.#loadOnce();
  }

  /** For the gateway's `prepare`: undefined once loaded, so later upgrades go through in the same tick. */
  prepareWs(): Promise<void> | undefined {
    return this.#service ? undefined : this.service().then(() => undefined);
  }

  close(): void {
    this.#closed = true;
    this.#service?.close();
  }

  async #load(): Promise<GraphQLService> {
    const [{ GraphQLService }, { serveGraphQLWs }] = await Promise.all([
      import('./graphql-service.ts'),
      import('./ws-endpoint.ts'),
    ]);
    if (this.#closed) throw new Error('the server is shutting down');
    const service = new GraphQLService(this.#deps.service, this.#deps.feed);
    await service.start();
    if (this.#closed) {
      service.close();
      throw new Error('the server is shutting down');
    }
    serveGraphQLWs(this.#deps.wss, { ...this.#deps.ws, service });
    this.#service = service;
    return service;
  }
}
