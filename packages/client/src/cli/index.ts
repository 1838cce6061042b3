/**
 * `@rustydb/client/cli`: the client's commands of `rustydb` (`shell`, `query`, `watch`, `gen`), as the
 * command set `@rustydb/server`'s `rustydb` runs them through.
 */
export { commandSet, runClientCommand } from './commands.ts';
