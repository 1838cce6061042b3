/**
 * Administration of users, roles and grants (ADMIN privilege):
 * `/api/v1/users`, `/api/v1/users/:name`, `/api/v1/roles`, `/api/v1/roles/:name`, `/api/v1/roles/:name/grants`.
 * Every change is applied to open connections at once through AccessControl.changed().
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RustyError } from '../errors/rusty-error.ts';
import type { UserStore } from '../auth/user-store.ts';
import { isValidUsername } from '../auth/user-store.ts';
import { normalizeGrant, type RoleStore } from '../auth/role-store.ts';
import type { Principal } from '../auth/authenticator.ts';
import { bearerPrincipal, parseBody, requestContext, type RestDeps } from './http-helpers.ts';
import type { AuditEvent, AuditLog } from '../audit/audit-log.ts';

export interface AdminDeps extends RestDeps {
  users: UserStore;
  roles: RoleStore;
  /** Called after a user's credentials or status changed: their open sessions are ended. */
  onUserInvalidated?: (username: string) => void;
  audit?: AuditLog;
}

const grantSchema = z.object({
  privilege: z.string().min(1).max(32),
  table: z.string().min(1).max(128).optional(),
});
const createUserSchema = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(8).max(1024),
  roles: z.array(z.string().min(1).max(64)).max(64).default([]),
});
const updateUserSchema = z.object({
  password: z.string().min(8).max(1024).optional(),
  roles: z.array(z.string().min(1).max(64)).max(64).optional(),
  disabled: z.boolean().optional(),
});
const createRoleSchema = z.object({
  name: z.string().min(1).max(64),
  description: z.string().max(500).default(''),
  grants: z.array(grantSchema).max(1000).default([]),
});
const nameParams = z.object({ name: z.string().min(1).max(64) });

function notFound(what: string): RustyError {
  return new RustyError('NOT_FOUND', `${what} not found`);
}

export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { users, roles, access } = deps;
  const principalOf = bearerPrincipal(deps);
  const requireAdmin = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await principalOf(request);
    await access.requireGlobal(principal, 'ADMIN');
    return principal;
  };
  const audit = (
    request: FastifyRequest,
    admin: Principal,
    event: AuditEvent['event'],
    fields: Omit<AuditEvent, 'event' | 'actor'>,
  ): void => deps.audit?.record({ event, actor: admin.user, ...requestContext(request), ...fields });
  const checkRoles = async (names: string[]): Promise<void> => {
    for (const name of names) if (!(await roles.get(name))) throw notFound(`role '${name}'`);
  };

  app.get('/api/v1/users', async (request) => {
    await requireAdmin(request);
    return { success: true, data: { users: await users.list() } };
  });

  app.post('/api/v1/users', async (request, reply) => {
    const admin = await requireAdmin(request);
    const body = parseBody(createUserSchema, request.body);
    if (!isValidUsername(body.username)) throw new RustyError('INVALID_MESSAGE', 'invalid username');
    if (await users.find(body.username))
      throw new RustyError('INVALID_MESSAGE', `user '${body.username}' already exists`);
    await checkRoles(body.roles);
    await users.create(body.username, body.password, body.roles);
    await access.changed();
    audit(request, admin, 'user.create', { user: body.username, details: { roles: body.roles } });
    return reply.code(201).send({ success: true, data: { username: body.username, roles: body.roles } });
  });

  app.get('/api/v1/users/:name', async (request) => {
    await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    const user = await users.find(name);
    if (!user) throw notFound(`user '${name}'`);
    return { success: true, data: { username: user.username, roles: user.roles, disabled: user.disabled } };
  });

  app.patch('/api/v1/users/:name', async (request) => {
    const admin = await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    const body = parseBody(updateUserSchema, request.body);
    const before = await users.find(name);
    if (!before) throw notFound(`user '${name}'`);
    // An administrator cannot lock themselves (possibly the last administrator) out.
    if (name === admin.user && !admin.external) {
      if (body.disabled === true) throw new RustyError('INVALID_MESSAGE', 'you cannot disable yourself');
      if (body.roles) {
        const kept = await Promise.all(body.roles.map((role) => roles.get(role)));
        if (!kept.some((role) => role?.grants.some((grant) => grant.privilege === 'ADMIN'))) {
          throw new RustyError('INVALID_MESSAGE', 'you cannot take the ADMIN privilege from yourself');
        }
      }
    }
    if (body.roles) {
      await checkRoles(body.roles);
      await users.setRoles(name, body.roles);
    }
    if (body.password !== undefined) await users.setPassword(name, body.password);
    if (body.disabled !== undefined) await users.setDisabled(name, body.disabled);
    await access.changed();
    audit(request, admin, 'user.update', {
      user: name,
      details: {
        // Which fields changed; the new password itself is never recorded.
        changed: (['roles', 'password', 'disabled'] as const).filter((field) => body[field] !== undefined),
        ...(body.roles ? { roles: body.roles } : {}),
        ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
      },
    });
    // A role given to or taken from a user is a grant or a revoke too.
    for (const role of body.roles ?? []) {
      if (!before.roles.includes(role)) audit(request, admin, 'grant.add', { user: name, details: { role } });
    }
    for (const role of body.roles ? before.roles : []) {
      if (!body.roles!.includes(role))
        audit(request, admin, 'grant.revoke', { user: name, details: { role } });
    }
    if (body.password !== undefined || body.disabled === true) deps.onUserInvalidated?.(name);
    const user = (await users.find(name))!;
    return { success: true, data: { username: user.username, roles: user.roles, disabled: user.disabled } };
  });

  app.delete('/api/v1/users/:name', async (request) => {
    const principal = await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    if (name === principal.user) throw new RustyError('INVALID_MESSAGE', 'you cannot delete yourself');
    if (!(await users.remove(name))) throw notFound(`user '${name}'`);
    await access.changed();
    audit(request, principal, 'user.delete', { user: name });
    deps.onUserInvalidated?.(name);
    return { success: true, data: { deleted: name } };
  });

  app.get('/api/v1/roles', async (request) => {
    await requireAdmin(request);
    return { success: true, data: { roles: await roles.list() } };
  });

  app.post('/api/v1/roles', async (request, reply) => {
    const admin = await requireAdmin(request);
    const body = parseBody(createRoleSchema, request.body);
    const grants = body.grants.map(normalizeGrant);
    await roles.create(body.name, body.description, grants);
    await access.changed();
    audit(request, admin, 'role.create', { details: { role: body.name, grants } });
    return reply.code(201).send({ success: true, data: await roles.get(body.name) });
  });

  app.get('/api/v1/roles/:name', async (request) => {
    await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    const role = await roles.get(name);
    if (!role) throw notFound(`role '${name}'`);
    return { success: true, data: role };
  });

  app.delete('/api/v1/roles/:name', async (request) => {
    const admin = await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    if (!(await roles.remove(name))) throw notFound(`role '${name}'`);
    // Take the role from its holders too: a role created later under the same name must not hand
    // its privileges to whoever held the old one.
    const holders = (await users.list()).filter((user) => user.roles.includes(name));
    for (const user of holders) {
      await users.setRoles(
        user.username,
        user.roles.filter((role) => role !== name),
      );
    }
    await access.changed();
    audit(request, admin, 'role.delete', {
      details: { role: name, taken_from: holders.map((user) => user.username) },
    });
    return { success: true, data: { deleted: name } };
  });

  app.post('/api/v1/roles/:name/grants', async (request) => {
    const admin = await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    if (!(await roles.get(name))) throw notFound(`role '${name}'`);
    const grant = normalizeGrant(parseBody(grantSchema, request.body));
    await roles.grant(name, grant);
    await access.changed();
    audit(request, admin, 'grant.add', { details: { role: name, ...grant } });
    return { success: true, data: await roles.get(name) };
  });

  app.delete('/api/v1/roles/:name/grants', async (request) => {
    const admin = await requireAdmin(request);
    const { name } = parseBody(nameParams, request.params);
    const grant = normalizeGrant(parseBody(grantSchema, request.body));
    if (!(await roles.revoke(name, grant))) throw notFound('grant');
    await access.changed();
    audit(request, admin, 'grant.revoke', { details: { role: name, ...grant } });
    return { success: true, data: await roles.get(name) };
  });
}
