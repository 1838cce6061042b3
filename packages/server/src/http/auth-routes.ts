/** `POST /api/v1/auth/login`. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseBody, type RestDeps } from './http-helpers.ts';

const loginSchema = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });

export function registerAuthRoutes(app: FastifyInstance, deps: RestDeps): void {
  app.post('/api/v1/auth/login', async (request) => {
    const { username, password } = parseBody(loginSchema, request.body);
    const { token, expiresAt } = await deps.authenticator.login(username, password);
    return { success: true, data: { token, expires_at: expiresAt.toISOString() } };
  });
}
