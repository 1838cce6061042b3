/** `GET /api/v1/subscriptions` (figures per subscription) and `DELETE /api/v1/subscriptions/:key`, for admins. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { SubscriptionHub } from '../changes/subscription-hub.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { bearerPrincipal, parseBody, type RestDeps } from './http-helpers.ts';

const keyParams = z.object({ key: z.string().min(1).max(1024) });

export function registerSubscriptionRoutes(
  app: FastifyInstance,
  deps: RestDeps & { hub: SubscriptionHub },
): void {
  const principalOf = bearerPrincipal(deps);

  app.get('/api/v1/subscriptions', async (request) => {
    await deps.access.requireGlobal(await principalOf(request), 'ADMIN');
    return {
      success: true,
      data: { head: await deps.engine.changes.head(), subscriptions: deps.hub.list() },
    };
  });

  app.delete('/api/v1/subscriptions/:key', async (request) => {
    await deps.access.requireGlobal(await principalOf(request), 'ADMIN');
    const { key } = parseBody(keyParams, request.params);
    if (!deps.hub.kill(key)) throw new RustyError('NOT_FOUND', 'subscription not found');
    return { success: true, data: { killed: key } };
  });
}
