/** `@rustydb/client/react`: a provider and hooks over `@rustydb/client`. */
export { RustyDBProvider, type RustyDBProviderProps } from './provider.ts';
export {
  useConnectionState,
  useLiveQuery,
  useQuery,
  useRustyDB,
  useSubscription,
  useWatch,
  type LiveStatus,
  type QueryStatus,
  type UseLiveQueryOptions,
  type UseLiveQueryResult,
  type UseQueryOptions,
  type UseQueryResult,
  type UseSubscriptionOptions,
  type UseSubscriptionResult,
  type UseWatchOptions,
  type UseWatchResult,
} from './hooks.ts';
export { RustyDBContext } from './context.ts';
