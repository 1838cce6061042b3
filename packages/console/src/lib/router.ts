/** Hash routes (`#/tables/orders`): the server serves one page at `/`, the console picks the view. */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  page: string;
  /** The rest of the path, decoded: a table, a collection, an admin tab. */
  arg: string | undefined;
}

export function parseRoute(hash: string): Route {
  const [page, ...rest] = hash.replace(/^#\/?/, '').split('/');
  return {
    page: page || 'sql',
    arg: rest.length > 0 && rest[0] ? decodeURIComponent(rest.join('/')) : undefined,
  };
}

export function href(page: string, arg?: string): string {
  return `#/${page}${arg ? `/${encodeURIComponent(arg)}` : ''}`;
}

export function navigate(page: string, arg?: string): void {
  location.hash = href(page, arg);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = (): void => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
