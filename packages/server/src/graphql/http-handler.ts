/**
 * The graphql-http handler behind `/graphql` (see http-endpoint.ts), made at the first request: this
 * module is what loads graphql-http and graphql-js for HTTP.
 */
import { randomUUID } from 'node:crypto';
import { createHandler } from 'graphql-http/lib/use/fastify';
import type { Principal } from '../auth/authenticator.ts';
import type { Logger } from '../core/logger.ts';
import type { GraphQLContext } from './context.ts';
import { formatGraphQLError } from './errors.ts';
import type { GraphQLService } from './graphql-service.ts';

export type GraphQLHttpHandler = ReturnType<typeof createHandler>;

export function createGraphQLHttpHandler(
  service: GraphQLService,
  logger: Logger,
  callerOf: (raw: unknown) => { principal: Principal; signal: AbortSignal },
): GraphQLHttpHandler {
  return createHandler({
    schema: (req) => service.schemaFor(callerOf(req.raw).principal),
    context: (req) => {
      const { principal, signal } = callerOf(req.raw);
      // graphql-http types its context as a plain record; resolvers read it as a GraphQLContext.
      const context: Promise<GraphQLContext> = service.contextFor(principal, {
        sessionId: `http:${randomUUID()}`,
        operationId: 'http',
        signal,
      });
      return context as unknown as Promise<Record<string, unknown>>;
    },
    validationRules: [...service.validationRules],
    // Parsed once per query text and validated once per schema (document-cache.ts).
    parse: (source) => service.documents.parse(typeof source === 'string' ? source : source.body),
    validate: (schema, document, rules) => service.documents.validate(schema, document, rules),
    formatError: (err) => formatGraphQLError(err, logger),
  });
}
