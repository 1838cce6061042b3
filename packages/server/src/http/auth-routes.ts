/**
 * The token lifecycle: `POST /api/v1/auth/login` (rate limited per username and address),
 * `/refresh`, `/logout`, `/password` and `GET /me`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { RustyError } from '../errors/rusty-error.ts';
import type { LoginLimiter } from '../auth/login-limiter.ts';
import type { UserStore } from '../auth/user-store.ts';
import { verifyPassword } from '../auth/passwords.ts';
import type { SessionRegistry } from '../core/session-registry.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { bearerPrincipal, parseBody, requestContext, type RestDeps } from './http-helpers.ts';

export interface AuthRouteDeps extends RestDeps {
  users: UserStore;
  loginLimiter: LoginLimiter;
  sessions: SessionRegistry;
  audit?: AuditLog;
}

const loginSchema = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
const logoutSchema = z.object({ all: z.boolean().optional() }).optional();
const passwordSchema = z.object({
  current_password: z.string().min(1).max(1024),
  new_password: z.string().min(8).max(1024),
});

/** What the sockets of a logged-out or changed user are told before they are closed. */
export const REVOKED_MESSAGE = 'the token was revoked (logout or credentials changed); log in again';

function tooManyAttempts(reply: FastifyReply, waitMs: number): FastifyReply {
  return reply
    .code(429)
    .header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))))
    .send({
      success: false,
      error: {
        code: 'RATE_LIMIT_EXCEEDED',
        message: 'too many failed login attempts; wait before trying again',
        details: { retry_after_ms: waitMs },
      },
    });
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps): void {
  const { authenticator, loginLimiter, sessions, users, access } = deps;
  const principalOf = bearerPrincipal(deps);

  app.post('/api/v1/auth/login', async (request, reply) => {
    const { username, password } = parseBody(loginSchema, request.body);
    const context = requestContext(request);
    const attempt = loginLimiter.attempt(username, context.ip);
    if (typeof attempt === 'number') {
      const wait = attempt;
      deps.audit?.record({
        event: 'login.throttled',
        user: username,
        ...context,
        details: { retry_after_ms: wait },
      });
      return tooManyAttempts(reply, wait);
    }
    try {
      const { token, expiresAt } = await authenticator.login(username, password, context);
      attempt.succeeded();
      return { success: true, data: { token, expires_at: expiresAt.toISOString() } };
    } finally {
      attempt.failed();
    }
  });

  app.post('/api/v1/auth/refresh', async (request) => {
    const principal = await principalOf(request);
    if (principal.anonymous)
      throw new RustyError('AUTH_REQUIRED', 'authentication is off: there is no token to refresh');
    const { token, expiresAt } = await authenticator.refresh(principal, requestContext(request));
    return { success: true, data: { token, expires_at: expiresAt.toISOString() } };
  });

  app.post('/api/v1/auth/logout', async (request) => {
    const principal = await principalOf(request);
    if (principal.anonymous)
      throw new RustyError('AUTH_REQUIRED', 'authentication is off: there is no token to revoke');
    const everywhere = parseBody(logoutSchema, request.body)?.all ?? false;
    await authenticator.logout(principal, everywhere, requestContext(request));
    // Every socket that ever presented a token of this login (or this token), whichever it holds now.
    const credential = principal.loginId ?? principal.tokenId;
    const closed =
      everywhere || !credential
        ? sessions.killUser(principal.user, 'AUTH_EXPIRED', REVOKED_MESSAGE, 'logged out')
        : sessions.killCredential(credential, 'AUTH_EXPIRED', REVOKED_MESSAGE, 'logged out');
    return { success: true, data: { logged_out: true, all: everywhere, sessions_closed: closed } };
  });

  /**
   * Who the caller is and what it may do: its current roles and the grants they add up to. Lets a
   * client offer only what the server would allow (the server still checks every statement).
   */
  app.get('/api/v1/auth/me', async (request) => {
    const principal = await principalOf(request);
    const privileges = await access.privilegesOf(principal);
    const roles =
      principal.anonymous || principal.external
        ? principal.roles
        : ((await users.find(principal.user))?.roles ?? []);
    const expiresAt = principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString();
    return {
      success: true,
      data: { user: principal.user, roles, grants: privileges.grants, expires_at: expiresAt },
    };
  });

  /** A user changes their own password; every earlier token of theirs stops working, and a new one is returned. */
  app.post('/api/v1/auth/password', async (request, reply) => {
    const principal = await principalOf(request);
    if (principal.anonymous) throw new RustyError('AUTH_REQUIRED', 'authentication is off: there is no user');
    if (principal.external) {
      throw new RustyError('INVALID_MESSAGE', 'users of the identity provider change their password there');
    }
    const body = parseBody(passwordSchema, request.body);
    const context = requestContext(request);
    const attempt = loginLimiter.attempt(principal.user, context.ip);
    if (typeof attempt === 'number') return tooManyAttempts(reply, attempt);
    let correct = false;
    try {
      const user = await users.find(principal.user);
      correct = user !== undefined && (await verifyPassword(body.current_password, user.passwordHash));
    } finally {
      if (correct) attempt.succeeded();
      else attempt.failed();
    }
    if (!correct) {
      deps.audit?.record({
        event: 'auth.password_change',
        user: principal.user,
        ...context,
        details: { outcome: 'wrong current password' },
      });
      throw new RustyError('AUTH_FAILED', 'the current password is wrong');
    }
    await users.setPassword(principal.user, body.new_password);
    await access.changed();
    deps.audit?.record({
      event: 'auth.password_change',
      user: principal.user,
      ...context,
      details: { outcome: 'changed' },
    });
    const closed = sessions.killUser(principal.user, 'AUTH_EXPIRED', REVOKED_MESSAGE, 'credentials changed');
    const { token, expiresAt } = await authenticator.refresh(principal, context);
    return { success: true, data: { token, expires_at: expiresAt.toISOString(), sessions_closed: closed } };
  });
}
