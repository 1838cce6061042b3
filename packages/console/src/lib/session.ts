/**
 * A signed-in session: one RustyDB client for the tab, the token kept in sessionStorage (so it
 * survives a reload of the tab but not the tab itself), renewed before it expires, and revoked on
 * sign-out. The console is an ordinary client: everything goes through @rustydb/client.
 */
import { RustyDBClient, isRustyDBError, login, type TokenInfo } from '@rustydb/client';
import { Access, type Me } from './access.ts';

const TOKEN_KEY = 'rustydb.console.token';

export interface Session {
  client: RustyDBClient;
  me: Me;
  access: Access;
}

function saveToken(token: TokenInfo): void {
  sessionStorage.setItem(
    TOKEN_KEY,
    JSON.stringify({ token: token.token, expiresAt: token.expiresAt?.toISOString() }),
  );
}

export function savedToken(): TokenInfo | undefined {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) ?? 'null') as {
      token?: string;
      expiresAt?: string;
    } | null;
    if (!saved?.token) return undefined;
    const expiresAt = saved.expiresAt ? new Date(saved.expiresAt) : undefined;
    if (expiresAt && expiresAt.getTime() <= Date.now()) return undefined;
    return { token: saved.token, expiresAt };
  } catch {
    return undefined;
  }
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * A client for the tab's token. Renewal goes through `POST /api/v1/auth/refresh` with the current
 * token; each new token is saved for the tab. A token that can no longer be renewed ends the session.
 */
export function clientFor(token: TokenInfo): RustyDBClient {
  const client: RustyDBClient = new RustyDBClient({
    token: token.token,
    refreshToken: async () => {
      const data = await client.request<{ token: string; expires_at: string }>('/api/v1/auth/refresh', {
        method: 'POST',
      });
      const next = { token: data.token, expiresAt: new Date(data.expires_at) };
      saveToken(next);
      return next;
    },
    // A console should ride out a server restart: keep trying for a few minutes.
    reconnectDelay: 1000,
    maxReconnectDelay: 10_000,
    maxReconnectAttempts: 30,
  });
  return client;
}

/** Opens the session of a token: connects, authenticates, and asks the server what the user may do. */
export async function openSession(token: TokenInfo): Promise<Session> {
  const client = clientFor(token);
  try {
    await client.ready();
    const me = await client.request<Me>('/api/v1/auth/me');
    saveToken(client.auth.current ?? token);
    return { client, me, access: new Access(me) };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** What a sign-in attempt can end in besides a session. */
export type SignInFailure =
  | { kind: 'credentials'; message: string }
  | { kind: 'locked'; retryAfterMs: number; message: string }
  | { kind: 'unreachable'; message: string };

export async function signIn(username: string, password: string): Promise<Session> {
  const token = await login(location.origin, username, password);
  saveToken(token);
  return openSession(token);
}

/** Sorts a failed sign-in into what the sign-in page shows. */
export function describeSignInFailure(err: unknown): SignInFailure {
  if (isRustyDBError(err, 'RATE_LIMIT_EXCEEDED')) {
    const wait = Number(err.details?.retry_after_ms ?? 0);
    return { kind: 'locked', retryAfterMs: Number.isFinite(wait) ? wait : 0, message: err.message };
  }
  if (isRustyDBError(err, 'AUTH_FAILED') || isRustyDBError(err, 'INVALID_MESSAGE')) {
    return {
      kind: 'credentials',
      message: 'The user name or the password is wrong, or the user is disabled.',
    };
  }
  if (isRustyDBError(err)) return { kind: 'unreachable', message: `${err.code}: ${err.message}` };
  return { kind: 'unreachable', message: String(err) };
}

/** Signs out: the token is revoked on the server and forgotten by the tab. */
export async function signOut(session: Session): Promise<void> {
  forgetToken();
  try {
    await session.client.logout();
  } catch {
    // Already revoked or the server is gone: the tab forgets the token either way.
  }
}
