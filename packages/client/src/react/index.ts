/** `@rustydb/client/react`: a provider and hooks over `@rustydb/client`. */
export { RustyDBProvider, type RustyDBProviderProps } from './provider.ts';
export {
  useConnectionState,
  useQuery,
  useRustyDB,
  useSubscription,
  type UseQueryOptions,
  type UseQueryResult,
  type UseSubscriptionOptions,
  type UseSubscriptionResult,
} from './hooks.ts';
export { RustyDBContext } from './context.ts';
