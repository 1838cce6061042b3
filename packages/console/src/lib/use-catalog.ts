/** The catalog as a hook: re-renders when it is (re)loaded. */
import { useEffect, useState } from 'preact/hooks';
import type { RustyDBClient } from '@rustydb/client';
import { catalogOf, type Catalog } from './catalog.ts';

export function useCatalog(client: RustyDBClient): Catalog {
  const catalog = catalogOf(client);
  const [, setVersion] = useState(0);
  useEffect(() => catalog.subscribe(() => setVersion((v) => v + 1)), [catalog]);
  return catalog;
}
