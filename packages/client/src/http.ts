/** JSON calls to the HTTP API: the `{ success, data | error }` envelope, errors as RustyDBError. */
import { RustyDBError, errorFromPayload } from './errors.ts';

export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{ status: number; text(): Promise<string> }>;

export interface HttpCall {
  method?: string;
  body?: unknown;
  token?: string | undefined;
  timeoutMs: number;
  fetch?: FetchLike | undefined;
  /** Aborts the call (the client is closing). */
  signal?: AbortSignal | undefined;
}

/** Calls `path` on `baseUrl` and returns the envelope's `data`; throws RustyDBError on failure. */
export async function httpJson<T>(baseUrl: string, path: string, call: HttpCall): Promise<T> {
  const headers: Record<string, string> = {};
  if (call.token) headers.authorization = `Bearer ${call.token}`;
  let body: string | undefined;
  if (call.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(call.body);
  }
  const doFetch = call.fetch ?? (globalThis.fetch as unknown as FetchLike);
  // One signal for the timeout and the caller's abort (AbortSignal.any is too new for some browsers).
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, call.timeoutMs);
  const onAbort = (): void => controller.abort();
  if (call.signal?.aborted) controller.abort();
  call.signal?.addEventListener('abort', onAbort, { once: true });
  let status: number;
  let text: string;
  try {
    const res = await doFetch(`${baseUrl}${path}`, {
      method: call.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: controller.signal,
    });
    status = res.status;
    text = await res.text();
  } catch (err) {
    if (call.signal?.aborted) throw new RustyDBError('CLIENT_CLOSED', `${path}: aborted`, { cause: err });
    throw new RustyDBError(
      timedOut ? 'REQUEST_TIMEOUT' : 'HTTP_ERROR',
      timedOut
        ? `${path}: no answer within ${call.timeoutMs} ms`
        : `cannot reach ${baseUrl}: ${describe(err)}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    call.signal?.removeEventListener('abort', onAbort);
  }
  let parsed: { success?: boolean; data?: unknown; error?: unknown } | undefined;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (status >= 200 && status < 300 && parsed?.success === true) return parsed.data as T;
  if (parsed?.error) {
    const error = errorFromPayload(parsed.error);
    throw new RustyDBError(error.code, error.message, { details: error.details, status });
  }
  throw new RustyDBError('HTTP_ERROR', `${path}: HTTP ${status}`, { status });
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}
