/**
 * Endpoints whose URL names what they stream (a collection's watch endpoint, the metrics stream) start
 * streaming as soon as the connection is authenticated, when the client asks for it in the URL: with the
 * token in the URL, or with any of the stream's parameters. The stream is the message the client would
 * otherwise send (`watch`, `subscribe`), built from the query string, so it is checked by the same rules
 * and answered the same way (`subscribed`, or an error with its id).
 */

/** How one query parameter becomes a field of the message's payload. */
export type ParameterReader = (value: string) => unknown;

/** The query parameter that names the automatic stream (its id); the endpoint gives a default. */
const ID_PARAMETER = 'id';

/**
 * The text of the message the session starts with, or undefined when the URL asks for nothing (a client
 * that authenticates with an `auth` message and sends its own `watch`/`subscribe`).
 */
export function streamFromUrl(
  url: URL,
  type: string,
  defaultId: string,
  parameters: Record<string, ParameterReader>,
): string | undefined {
  const query = url.searchParams;
  const payload: Record<string, unknown> = {};
  for (const [name, read] of Object.entries(parameters)) {
    const value = query.get(name);
    if (value !== null) payload[name] = read(value);
  }
  if (Object.keys(payload).length === 0 && !query.has('token')) return undefined;
  return JSON.stringify({ type, id: query.get(ID_PARAMETER) ?? defaultId, payload });
}

/** A number; anything else is kept as it is, for the message's validation to refuse with its reason. */
export const numberParameter: ParameterReader = (value) => {
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) ? n : value;
};

/** JSON; text that is not JSON is kept as it is, for the validation to refuse. */
export const jsonParameter: ParameterReader = (value) => {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
};

/** A comma-separated list. */
export const listParameter: ParameterReader = (value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
