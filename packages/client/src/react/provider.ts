/**
 * `<RustyDBProvider client={…}>` or `<RustyDBProvider options={…}>`: makes a client available to the
 * hooks below it. Given `options`, the provider creates the client when it mounts and closes it when it
 * unmounts (children render once the client exists); a `client` passed in is never closed by it.
 */
import { createElement, useEffect, useState, type ReactNode } from 'react';
import { RustyDBClient, type ClientOptions } from '../client.ts';
import { RustyDBContext } from './context.ts';

export interface RustyDBProviderProps {
  /** A client created (and closed) by the application. */
  client?: RustyDBClient | undefined;
  /** Or: options for a client the provider owns. Read once, when the provider mounts. */
  options?: ClientOptions | undefined;
  children?: ReactNode;
}

export function RustyDBProvider(props: RustyDBProviderProps): ReactNode {
  const { client: given, options, children } = props;
  const [owned, setOwned] = useState<RustyDBClient | null>(null);
  useEffect(() => {
    if (given) return undefined;
    // Created in an effect, not during render: a render may be repeated or thrown away.
    const client = new RustyDBClient(options);
    setOwned(client);
    return () => {
      setOwned(null);
      void client.close();
    };
    // The options are read once; remount the provider (change its `key`) to connect elsewhere.
  }, [given]);
  const client = given ?? owned;
  if (!client) return null;
  return createElement(RustyDBContext.Provider, { value: client }, children);
}
