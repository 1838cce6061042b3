/** Liveness (the process answers) and readiness (the engine answers). */
import type { FastifyInstance } from 'fastify';
import { describeError } from '../core/logger.ts';
import type { RestDeps } from './http-helpers.ts';

const READINESS_TIMEOUT_MS = 2000;

export function registerHealthRoutes(app: FastifyInstance, deps: RestDeps): void {
  const { engine, logger } = deps;
  app.get('/api/v1/health/liveness', async () => ({ status: 'ok' }));

  app.get('/api/v1/health/readiness', async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        engine.healthCheck(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('engine did not answer in time')), READINESS_TIMEOUT_MS);
        }),
      ]);
      return { status: 'ready', engine: engine.name };
    } catch (err) {
      logger.warn('readiness check failed', describeError(err));
      return reply.code(503).send({ status: 'unavailable', engine: engine.name });
    } finally {
      clearTimeout(timer);
    }
  });
}
