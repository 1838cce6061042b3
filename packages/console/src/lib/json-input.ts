/** JSON typed by the user: parsed with a message that says what is wrong, or the value. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseJsonObject(
  text: string,
  what: string,
  emptyIs?: Record<string, unknown>,
): Parsed<Record<string, unknown>> {
  if (text.trim() === '' && emptyIs) return { ok: true, value: emptyIs };
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, message: `${what} must be a JSON object ({ … })` };
    }
    return { ok: true, value: value as Record<string, unknown> };
  } catch (err) {
    return { ok: false, message: `${what} is not valid JSON: ${(err as Error).message}` };
  }
}
