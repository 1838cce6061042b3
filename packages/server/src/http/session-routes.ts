/**
 * Administration of open WebSocket sessions (ADMIN privilege): `GET /api/v1/sessions[?user=NAME]`,
 * `DELETE /api/v1/sessions/:id` and `DELETE /api/v1/sessions?user=NAME`. A killed session receives a
 * PERMISSION_DENIED error and is closed with 1008 at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RustyError } from '../errors/rusty-error.ts';
import type { SessionRegistry } from '../core/session-registry.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Principal } from '../auth/authenticator.ts';
import { bearerPrincipal, parseBody, requestContext, type RestDeps } from './http-helpers.ts';

export interface SessionRouteDeps extends RestDeps {
  sessions: SessionRegistry;
  audit?: AuditLog;
}

export const KILLED_MESSAGE = 'the session was terminated by an administrator';

const idParams = z.object({ id: z.string().min(1).max(64) });
const userQuery = z.object({ user: z.string().min(1).max(64).optional() });

export function registerSessionRoutes(app: FastifyInstance, deps: SessionRouteDeps): void {
  const { sessions, access } = deps;
  const principalOf = bearerPrincipal(deps);
  const requireAdmin = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await principalOf(request);
    await access.requireGlobal(principal, 'ADMIN');
    return principal;
  };

  app.get('/api/v1/sessions', async (request) => {
    await requireAdmin(request);
    const { user } = parseBody(userQuery, request.query);
    // Every node's sessions when several share the database; `unanswered_nodes` says how many did not
    // answer in time (their sessions are missing from the list).
    const listed = await sessions.listEverywhere(user === undefined ? {} : { user });
    return {
      success: true,
      data: { node: sessions.node, sessions: listed.sessions, unanswered_nodes: listed.unanswered },
    };
  });

  app.delete('/api/v1/sessions/:id', async (request) => {
    const admin = await requireAdmin(request);
    const { id } = parseBody(idParams, request.params);
    // The session may be held by another node sharing the database.
    const user = await sessions.killAnywhere(id, 'PERMISSION_DENIED', KILLED_MESSAGE, 'session terminated');
    if (user === undefined) throw new RustyError('NOT_FOUND', `session '${id}' not found`);
    deps.audit?.record({
      event: 'session.kill',
      actor: admin.user,
      user,
      session: id,
      ...requestContext(request),
    });
    return { success: true, data: { closed: 1 } };
  });

  app.delete('/api/v1/sessions', async (request) => {
    const admin = await requireAdmin(request);
    const { user } = parseBody(userQuery, request.query);
    if (user === undefined) {
      throw new RustyError('INVALID_MESSAGE', 'name the sessions to end: DELETE /api/v1/sessions?user=NAME');
    }
    const closed = sessions.killUser(user, 'PERMISSION_DENIED', KILLED_MESSAGE, 'session terminated');
    deps.audit?.record({
      event: 'session.kill',
      actor: admin.user,
      user,
      ...requestContext(request),
      details: { closed },
    });
    return { success: true, data: { closed } };
  });
}
