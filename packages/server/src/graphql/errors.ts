/**
 * Errors on the GraphQL surfaces carry the protocol's codes in `extensions.code` (the same table as
 * `/api/v1/stream`, see docs/protocol.md), with the error's details beside it:
 *
 * - a failure of the operation's own work (SQL, privileges, limits) keeps its RustyError code;
 * - a GraphQL syntax, validation or variable error, and a malformed request, is INVALID_MESSAGE;
 * - anything else is INTERNAL_ERROR with a generic message (the real one goes to the server log).
 */
import { GraphQLError } from 'graphql';
import { isErrorCode, type ErrorCode } from '@rustydb/protocol';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import { describeError, type Logger } from '../core/logger.ts';

/** A RustyError (or anything thrown) as the GraphQLError a resolver throws. */
export function toGraphQLError(err: unknown, logger?: Logger): GraphQLError {
  if (err instanceof GraphQLError && isErrorCode(err.extensions.code)) return err;
  const failure = normalizeError(err, (e) => logger?.error('graphql resolver failed', describeError(e)));
  return rustyGraphQLError(failure);
}

export function rustyGraphQLError(err: RustyError): GraphQLError {
  return new GraphQLError(err.message, { extensions: { code: err.code, ...(err.details ?? {}) } });
}

export function graphQLErrorOf(
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): GraphQLError {
  return rustyGraphQLError(new RustyError(code, message, details));
}

/**
 * The last step before an error leaves the server (graphql-http's and graphql-ws's formatters): every
 * error ends up with a code, and no internal message leaks.
 */
export function formatGraphQLError(err: Readonly<GraphQLError | Error>, logger?: Logger): GraphQLError {
  if (!(err instanceof GraphQLError)) {
    // graphql-http reports a malformed request (bad JSON, missing query) as a plain Error.
    return new GraphQLError(err.message, { extensions: { code: 'INVALID_MESSAGE' } });
  }
  if (isErrorCode(err.extensions.code)) return err;
  const original = err.originalError;
  if (original === undefined || original === null) {
    // Syntax, validation, variable coercion: about the client's document.
    return withCode(err, 'INVALID_MESSAGE');
  }
  if (original instanceof RustyError) return withCode(err, original.code, original.message, original.details);
  if (original instanceof GraphQLError) {
    // graphql-js's own complaints during execution (a value its scalar cannot represent): safe to show.
    return withCode(err, isErrorCode(original.extensions.code) ? original.extensions.code : 'QUERY_ERROR');
  }
  logger?.error('graphql execution failed', describeError(original));
  return withCode(err, 'INTERNAL_ERROR', 'internal server error');
}

function withCode(
  err: GraphQLError,
  code: ErrorCode,
  message = err.message,
  details?: Record<string, unknown>,
): GraphQLError {
  return new GraphQLError(message, {
    nodes: err.nodes,
    source: err.source,
    positions: err.positions,
    path: err.path,
    extensions: { ...err.extensions, ...(details ?? {}), code },
  });
}
