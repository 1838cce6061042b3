/**
 * `@rustydb/client/cli`: the client's commands of `rustydb`, and the dispatcher that makes one
 * `rustydb` command of every installed package's commands (`@rustydb/server`'s `rustydb` uses it too).
 */
export { commandSet, runClientCommand } from './commands.ts';
export {
  importIfInstalled,
  runRustydb,
  rustydbUsage,
  type CommandOutput,
  type CommandSet,
  type Companion,
} from './command-set.ts';
