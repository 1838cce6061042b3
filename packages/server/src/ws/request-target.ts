/**
 * The path and query of an upgrade request (`request.url`), read as WHATWG URL parsing would read them
 * with http://localhost as the base, but without building a URL and its URLSearchParams when the text is
 * plain: parsing a URL cost every connect ~2.5 µs, and URLSearchParams ~9 µs more for a JWT in the query
 * (it decodes the query character by character), more than the token check itself.
 *
 * The plain case is decided by character sets on which both readings agree: a path of letters, digits,
 * `-`, `_` and `/` (not starting with `//`, which would name a host) is its own pathname; a query without
 * `%` or `+` (nothing to decode) whose characters the URL parser copies as they are splits on `&` and
 * `=` exactly as URLSearchParams does. Anything else — dot segments, escapes, a fragment, spaces — is
 * read through URL itself, so the two readings never differ (request-target.test.ts checks both).
 */

/** A path the URL parser leaves as it is (no dot segments, escapes, backslashes or host). */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9_\-/]*$/;
/** A query the URL parser copies as it is and URLSearchParams has nothing to decode in. */
const PLAIN_QUERY = /^[A-Za-z0-9_\-.~=&,:]*$/;

export class RequestTarget {
  readonly pathname: string;
  /** The query's text without its `?`, when it is plain; else undefined (read through #url). */
  readonly #query: string | undefined;
  readonly #raw: string;
  #url: URL | undefined;

  /** Throws a TypeError (ERR_INVALID_URL) when `raw` is no URL: see requestTarget. */
  constructor(raw: string) {
    this.#raw = raw;
    const mark = raw.indexOf('?');
    const path = mark < 0 ? raw : raw.slice(0, mark);
    const query = mark < 0 ? '' : raw.slice(mark + 1);
    if (PLAIN_PATH.test(path) && PLAIN_QUERY.test(query)) {
      this.pathname = path;
      this.#query = query;
    } else {
      this.#query = undefined;
      this.pathname = this.url.pathname;
    }
  }

  /** The whole URL, parsed on first use (for the endpoints that read more than a parameter or two). */
  get url(): URL {
    return (this.#url ??= new URL(this.#raw, 'http://localhost'));
  }

  /** The first value of the query parameter `name`, or null: what `url.searchParams.get(name)` says. */
  param(name: string): string | null {
    const query = this.#query;
    if (query === undefined) return this.url.searchParams.get(name);
    let start = 0;
    while (start <= query.length) {
      let end = query.indexOf('&', start);
      if (end < 0) end = query.length;
      // Empty pieces (`a&&b`) are no parameter, not one with an empty name.
      if (end === start) {
        start = end + 1;
        continue;
      }
      const equals = query.indexOf('=', start);
      const nameEnd = equals >= 0 && equals < end ? equals : end;
      if (nameEnd - start === name.length && query.startsWith(name, start)) {
        return nameEnd === end ? '' : query.slice(nameEnd + 1, end);
      }
      start = end + 1;
    }
    return null;
  }
}

/** The target of `raw`, or undefined when it is no URL (a request the server answers 400). */
export function requestTarget(raw: string): RequestTarget | undefined {
  try {
    return new RequestTarget(raw);
  } catch {
    return undefined;
  }
}
