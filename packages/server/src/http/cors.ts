/**
 * Cross-origin HTTP: requests that carry an Origin the OriginPolicy refuses are answered `403` before any
 * route runs (a browser sends some cross-origin requests without asking first, and the server must not
 * act on them); allowed origins get the CORS headers that let their pages read the answers, and their
 * preflight requests are answered here. Tokens travel in the Authorization header, never in cookies, so
 * credentials are never allowed.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import type { OriginPolicy } from '../auth/origin-policy.ts';
import { requestContext } from './http-helpers.ts';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
const ALLOWED_HEADERS = 'authorization, content-type';
/** How long a browser may reuse a preflight answer, seconds. */
const PREFLIGHT_MAX_AGE = '600';

export function registerCors(app: FastifyInstance, origins: OriginPolicy, audit?: AuditLog): void {
  app.addHook('onRequest', async (request, reply) => {
    // Answers differ by Origin: caches must keep them apart.
    reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    const host = request.headers.host;
    if (!origins.allows(origin, host)) {
      audit?.record({
        event: 'origin.denied',
        ...requestContext(request),
        details: { origin: origin?.slice(0, 200), host: host?.slice(0, 200) },
      });
      return reply.code(403).send({
        success: false,
        error: {
          code: 'PERMISSION_DENIED',
          message:
            origin === undefined
              ? 'this server answers only to a loopback name or address while authentication is off'
              : 'requests from this origin are not allowed; list it in allowed_origins',
        },
      });
    }
    if (origin === undefined) return;
    reply.header('access-control-allow-origin', origin);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      reply.header('access-control-allow-methods', ALLOWED_METHODS);
      reply.header('access-control-allow-headers', ALLOWED_HEADERS);
      reply.header('access-control-max-age', PREFLIGHT_MAX_AGE);
      return reply.code(204).send();
    }
    reply.header('access-control-expose-headers', 'retry-after');
  });
}
