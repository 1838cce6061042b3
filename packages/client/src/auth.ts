/**
 * Where tokens come from: a token given up front, a login over HTTP, and renewal before expiry.
 *
 * Renewal, in order of preference: the application's `refreshToken` callback; otherwise
 * `POST /api/v1/auth/refresh` with the current token, falling back to a new login when credentials
 * were given. The connection sends the new token in an `auth` message on the open socket, so nothing
 * running on it is interrupted.
 */
import { RustyDBError } from './errors.ts';
import { httpJson, type FetchLike } from './http.ts';

export interface TokenInfo {
  token: string;
  /** When the token expires; learnt from `auth_success` when not known. */
  expiresAt?: Date | undefined;
}

/**
 * Returns a fresh token: a string, or the token with its expiry. `signal` aborts when the client is
 * closed meanwhile (pass it on to fetch).
 */
export type RefreshTokenCallback = (
  current: TokenInfo | undefined,
  context: { signal: AbortSignal },
) => Promise<string | TokenInfo>;

export interface AuthOptions {
  /** A token from an earlier login. */
  token?: string | undefined;
  /** Log in with these when there is no token, and again when a token can no longer be refreshed. */
  username?: string | undefined;
  password?: string | undefined;
  /** Supplies a new token before the current one expires (and after it expired, if it can). */
  refreshToken?: RefreshTokenCallback | undefined;
  /**
   * Renew this many milliseconds before expiry (default 60 000). A token with less than two margins of
   * life left is renewed halfway through what it has left, so that short-lived tokens leave the renewal
   * as much time as they can.
   */
  refreshMargin?: number | undefined;
}

interface LoginData {
  token: string;
  expires_at: string;
}

/** `POST /api/v1/auth/login`. */
export async function login(
  httpUrl: string,
  username: string,
  password: string,
  options: { timeoutMs?: number; fetch?: FetchLike; signal?: AbortSignal } = {},
): Promise<TokenInfo> {
  const data = await httpJson<LoginData>(httpUrl, '/api/v1/auth/login', {
    body: { username, password },
    timeoutMs: options.timeoutMs ?? 30_000,
    fetch: options.fetch,
    signal: options.signal,
  });
  return { token: data.token, expiresAt: new Date(data.expires_at) };
}

export class AuthManager {
  readonly #httpUrl: string;
  readonly #options: AuthOptions;
  readonly #timeoutMs: number;
  readonly #fetch: FetchLike | undefined;
  #current: TokenInfo | undefined;
  #renewing: Promise<TokenInfo> | undefined;
  /** Aborts HTTP calls still running when the client closes. */
  #abort = new AbortController();

  constructor(httpUrl: string, options: AuthOptions, timeoutMs: number, fetchImpl?: FetchLike) {
    this.#httpUrl = httpUrl;
    this.#options = options;
    this.#timeoutMs = timeoutMs;
    this.#fetch = fetchImpl;
    if (options.token) this.#current = { token: options.token };
  }

  /** Whether there is anything to authenticate with. Without it the server must run without authentication. */
  get enabled(): boolean {
    return (
      this.#current !== undefined ||
      this.#options.refreshToken !== undefined ||
      this.#options.username !== undefined
    );
  }

  /** Whether a token can still be obtained once the current one has expired or was refused. */
  get canReauthenticate(): boolean {
    return this.#options.refreshToken !== undefined || this.#hasCredentials;
  }

  get #hasCredentials(): boolean {
    return this.#options.username !== undefined && this.#options.password !== undefined;
  }

  get current(): TokenInfo | undefined {
    return this.#current;
  }

  /** The token to authenticate a new socket with; logs in first when there is none. */
  async token(): Promise<string> {
    if (this.#current) return this.#current.token;
    return (await this.renew('initial')).token;
  }

  /**
   * Gets a new token. `expired`: the current one no longer works (refresh over HTTP is pointless).
   * Concurrent calls share one renewal.
   */
  renew(why: 'initial' | 'refresh' | 'expired'): Promise<TokenInfo> {
    this.#renewing ??= this.#renew(why).finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async #renew(why: 'initial' | 'refresh' | 'expired'): Promise<TokenInfo> {
    const { refreshToken, username, password } = this.#options;
    let next: TokenInfo | undefined;
    if (refreshToken) {
      const result = await refreshToken(this.#current, { signal: this.#abort.signal });
      next = typeof result === 'string' ? { token: result } : result;
    } else {
      if (why === 'refresh' && this.#current) {
        try {
          const data = await httpJson<LoginData>(this.#httpUrl, '/api/v1/auth/refresh', {
            method: 'POST',
            token: this.#current.token,
            timeoutMs: this.#timeoutMs,
            fetch: this.#fetch,
            signal: this.#abort.signal,
          });
          next = { token: data.token, expiresAt: new Date(data.expires_at) };
        } catch (err) {
          if (!this.#hasCredentials || this.#abort.signal.aborted) throw err;
        }
      }
      if (!next) {
        if (!this.#hasCredentials) {
          throw new RustyDBError(
            'AUTH_EXPIRED',
            'the token can no longer be used and there are no credentials or refreshToken callback to get another',
          );
        }
        next = await login(this.#httpUrl, username!, password!, {
          timeoutMs: this.#timeoutMs,
          signal: this.#abort.signal,
          ...(this.#fetch ? { fetch: this.#fetch } : {}),
        });
      }
    }
    if (typeof next.token !== 'string' || next.token === '') {
      throw new RustyDBError('AUTH_FAILED', 'refreshToken returned no token');
    }
    this.#current = next;
    return next;
  }

  /** Stops renewals in progress (their HTTP calls are aborted). Called when the client closes. */
  close(): void {
    this.#abort.abort();
  }

  /** Usable again after close(): the client was opened again. */
  reopen(): void {
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
  }

  /** Records the expiry the server reported for the current token. */
  accepted(token: string, expiresAt: Date): void {
    this.#current = { token, expiresAt };
  }

  /**
   * Milliseconds from now until the token should be renewed. `remainingMs` is measured with the
   * server's clock (expiry minus the server's timestamp), so a skewed client clock does not matter.
   */
  refreshDelay(remainingMs: number): number {
    const margin = this.#options.refreshMargin ?? 60_000;
    return Math.max(0, remainingMs - margin, remainingMs / 2);
  }
}
