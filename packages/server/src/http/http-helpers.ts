/** What every REST route shares: body parsing, the response envelope, errors, and who is calling. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ANONYMOUS, type Authenticator, type Principal } from '../auth/authenticator.ts';
import type { AccessControl } from '../auth/access-control.ts';
import type { ServerConfig } from '../config/config.ts';
import type { Engine } from '../engine/engine.ts';
import { HTTP_STATUS, RustyError, normalizeError } from '../errors/rusty-error.ts';
import { describeError, type Logger } from '../core/logger.ts';

export interface RestDeps {
  engine: Engine;
  authenticator: Authenticator;
  access: AccessControl;
  config: ServerConfig;
  logger: Logger;
}

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new RustyError('INVALID_MESSAGE', `${where}${issue?.message ?? 'invalid request body'}`);
  }
  return parsed.data;
}

function sendError(reply: FastifyReply, err: RustyError): FastifyReply {
  const error = err.details
    ? { code: err.code, message: err.message, details: err.details }
    : { code: err.code, message: err.message };
  return reply.code(HTTP_STATUS[err.code]).send({ success: false, error });
}

/** Turns every thrown error into the `{ success: false, error }` envelope with the right status. */
export function registerErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error, _request, reply) => {
    const fastifyCode = (error as { code?: string }).code;
    if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .send({ success: false, error: { code: 'INVALID_MESSAGE', message: 'request body too large' } });
    }
    if (fastifyCode?.startsWith('FST_ERR_CTP') || (error as { statusCode?: number }).statusCode === 400) {
      return sendError(reply, new RustyError('INVALID_MESSAGE', 'request body is not valid JSON'));
    }
    return sendError(
      reply,
      normalizeError(error, (e) => logger.error('request failed', describeError(e))),
    );
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ success: false, error: { code: 'INVALID_MESSAGE', message: 'no such endpoint' } }),
  );
}

/**
 * Aborted when the client goes away before its answer is sent: the statements the request started are
 * interrupted rather than left to run (and hold locks) for statement_timeout. That is no failure of the
 * server, and is logged at debug level only. (The request's own 'close' does not say so: Node emits it
 * as soon as the body has been read.)
 */
export function clientGoneSignal(request: FastifyRequest, reply: FastifyReply, logger: Logger): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (reply.raw.writableFinished) return;
    logger.debug('request ended: the client went away', { endpoint: requestContext(request).endpoint });
    controller.abort();
  });
  return controller.signal;
}

/** Where a request came from, for the audit log: the client address and the path without its query. */
export function requestContext(request: FastifyRequest): { ip: string; endpoint: string } {
  return { ip: request.ip, endpoint: `${request.method} ${request.url.split('?')[0]}` };
}

/** The caller of a request, from its `Authorization: Bearer` header. */
export function bearerPrincipal(deps: RestDeps): (request: FastifyRequest) => Promise<Principal> {
  return async (request) => {
    if (!deps.config.require_authentication) return ANONYMOUS;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new RustyError('AUTH_REQUIRED', 'send an Authorization: Bearer <token> header');
    return deps.authenticator.authenticate(match[1]!, requestContext(request));
  };
}
