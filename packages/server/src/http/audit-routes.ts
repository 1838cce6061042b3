/** `GET /api/v1/audit?limit=N&event=NAME[,NAME…]&user=NAME`: the newest audit records (ADMIN privilege). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import { bearerPrincipal, parseBody, type RestDeps } from './http-helpers.ts';

export interface AuditRouteDeps extends RestDeps {
  audit: AuditLog;
}

export const MAX_AUDIT_LIMIT = 10_000;

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_LIMIT).default(100),
  event: z
    .string()
    .max(1000)
    .regex(/^[a-z_.,]*$/, 'event names are lower-case words separated by dots and commas')
    .optional(),
  user: z.string().min(1).max(64).optional(),
});

export function registerAuditRoutes(app: FastifyInstance, deps: AuditRouteDeps): void {
  const principalOf = bearerPrincipal(deps);
  app.get('/api/v1/audit', async (request) => {
    await deps.access.requireGlobal(await principalOf(request), 'ADMIN');
    const query = parseBody(auditQuery, request.query);
    const events = query.event?.split(',').filter((e) => e !== '');
    const records = await deps.audit.read({
      limit: query.limit,
      ...(events && events.length > 0 ? { events } : {}),
      ...(query.user !== undefined ? { user: query.user } : {}),
    });
    return { success: true, data: { events: records } };
  });
}
