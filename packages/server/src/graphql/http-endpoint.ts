/**
 * `POST /graphql` and `GET /graphql`: GraphQL over HTTP through graphql-http's fastify handler (which
 * follows the GraphQL-over-HTTP spec: media types, status codes, no mutations over GET). The caller is
 * named by `Authorization: Bearer <token>`, checked before graphql-http sees the request; a request
 * without a valid token gets 401 with `{errors: [{message, extensions: {code}}]}`. With
 * require_authentication off, a request without a token runs as the anonymous principal.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/authenticator.ts';
import { HTTP_STATUS, normalizeError } from '../errors/rusty-error.ts';
import { describeError } from '../core/logger.ts';
import { bearerPrincipal, clientGoneSignal, type RestDeps } from '../http/http-helpers.ts';
import { GRAPHQL_PATH } from './endpoints.ts';
import type { GraphQLHttpHandler } from './http-handler.ts';
import { loadOnce, type LazyGraphQL } from './lazy-graphql.ts';

export { GRAPHQL_PATH };

export function registerGraphQLHttp(app: FastifyInstance, deps: RestDeps & { graphql: LazyGraphQL }): void {
  const { graphql, logger } = deps;
  const principalOf = bearerPrincipal(deps);
  /** Who sent each request, from the preceding bearer check. */
  const callers = new WeakMap<FastifyRequest, { principal: Principal; signal: AbortSignal }>();
  const callerOf = (raw: unknown) => {
    const caller = callers.get(raw as FastifyRequest);
    if (!caller) throw new Error('graphql request without a checked caller');
    return caller;
  };

  // Made at the first request, with the GraphQL layer (lazy-graphql.ts); a failed load is retried.
  const handlerOnce = loadOnce(async (): Promise<GraphQLHttpHandler> => {
    const [service, { createGraphQLHttpHandler }] = await Promise.all([
      graphql.service(),
      import('./http-handler.ts'),
    ]);
    return createGraphQLHttpHandler(service, logger, callerOf);
  });

  app.register(async (scope) => {
    // graphql-http parses the body itself (and answers 415 to media types it does not take).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.all(GRAPHQL_PATH, async (request: FastifyRequest, reply: FastifyReply) => {
      let principal: Principal;
      try {
        principal = await principalOf(request);
      } catch (err) {
        const failure = normalizeError(err, (e) =>
          logger.error('graphql authentication failed', describeError(e)),
        );
        return reply
          .code(HTTP_STATUS[failure.code])
          .header('content-type', 'application/json; charset=utf-8')
          .send(
            JSON.stringify({ errors: [{ message: failure.message, extensions: { code: failure.code } }] }),
          );
      }
      // The statements of a request the client gave up on are interrupted.
      callers.set(request, { principal, signal: clientGoneSignal(request, reply, logger) });
      await (await handlerOnce()).call(scope, request, reply);
      return reply;
    });
  });
}
