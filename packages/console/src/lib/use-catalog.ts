/** The catalog as a hook: re-renders when it is (re)loaded. */
import { useEffect, useState } from 'preact/hooks';
import type { RustyDBClient } from '@rustydb/client';
import { catalogOf, type Catalog } from './catalog.ts';

export function useCatalog(client: RustyDBClient): Catalog {
  const catalog = catalogOf(client);
  const [, setVersion] = useState(0);
  // What the first render saw. Effects run after the browser paints (a frame later, longer on a busy
  // machine): a load that ended between the render and the subscription below was heard by nobody, and
  // the page would show no catalog until something else re-rendered it.
  const rendered = catalog.version;
  useEffect(() => {
    const unsubscribe = catalog.subscribe(() => setVersion((v) => v + 1));
    if (catalog.version !== rendered) setVersion((v) => v + 1);
    return unsubscribe;
    // `rendered` is the first render's on purpose: later renders are driven by the subscription.
  }, [catalog]);
  return catalog;
}
