/**
 * The REST surface: login, SQL over plain HTTP, and health. Every response is
 * `{ success: true, data }` or `{ success: false, error: { code, message, details? } }`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { batchMessageSchema, queryMessageSchema } from '@rustydb/protocol';
import { ANONYMOUS, type Authenticator, type Principal } from '../auth/authenticator.ts';
import type { ServerConfig } from '../config/config.ts';
import type { Engine } from '../engine/engine.ts';
import { HTTP_STATUS, RustyError, normalizeError } from '../errors/rusty-error.ts';
import { describeError, type Logger } from '../core/logger.ts';
import { MAX_UNSTREAMED_ROWS } from '../core/stream-session.ts';

export interface RestDeps {
  engine: Engine;
  authenticator: Authenticator;
  config: ServerConfig;
  logger: Logger;
}

const loginSchema = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
const queryBodySchema = queryMessageSchema.shape.payload;
const batchBodySchema = batchMessageSchema.shape.payload;

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
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

export function registerRestApi(app: FastifyInstance, deps: RestDeps): void {
  const { engine, authenticator, config, logger } = deps;

  async function principalOf(request: FastifyRequest): Promise<Principal> {
    if (!config.require_authentication) return ANONYMOUS;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new RustyError('AUTH_REQUIRED', 'send an Authorization: Bearer <token> header');
    return authenticator.authenticate(match[1]!);
  }

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

  app.post('/api/v1/auth/login', async (request) => {
    const { username, password } = parseBody(loginSchema, request.body);
    const { token, expiresAt } = await authenticator.login(username, password);
    return { success: true, data: { token, expires_at: expiresAt.toISOString() } };
  });

  app.post('/api/v1/query', async (request) => {
    await principalOf(request);
    const { sql, params } = parseBody(queryBodySchema, request.body);
    const timeoutMs = config.statement_timeout * 1000;
    const controller = new AbortController();
    request.raw.once('close', () => controller.abort());
    let result;
    for await (const chunk of engine.stream(
      { sql, params },
      { timeoutMs, signal: controller.signal, chunkSize: MAX_UNSTREAMED_ROWS + 1 },
    )) {
      if (!chunk.done) {
        throw new RustyError(
          'QUERY_ERROR',
          `result has more than ${MAX_UNSTREAMED_ROWS} rows; stream it over /api/v1/stream`,
        );
      }
      result = {
        columns: chunk.columns,
        rows: chunk.rows,
        rows_affected: chunk.rowsAffected ?? chunk.rows.length,
        ...(chunk.lastInsertId !== undefined ? { last_insert_id: chunk.lastInsertId } : {}),
      };
    }
    return { success: true, data: result };
  });

  app.post('/api/v1/batch', async (request) => {
    await principalOf(request);
    const { queries, transaction } = parseBody(batchBodySchema, request.body);
    const results = await engine.batch(queries, {
      timeoutMs: config.statement_timeout * 1000,
      transaction: transaction ?? false,
    });
    return { success: true, data: { results } };
  });

  app.get('/api/v1/health/liveness', async () => ({ status: 'ok' }));

  app.get('/api/v1/health/readiness', async (_request, reply) => {
    try {
      await Promise.race([
        engine.healthCheck(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('engine did not answer in time')), 2000).unref(),
        ),
      ]);
      return { status: 'ready', engine: engine.name };
    } catch (err) {
      logger.warn('readiness check failed', describeError(err));
      return reply.code(503).send({ status: 'unavailable', engine: engine.name });
    }
  });
}
