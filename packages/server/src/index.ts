/**
 * `@rustydb/server` as a library: start a server inside your own process (tests, an embedding
 * application). Most users run the `rustydb serve` command instead.
 */
export { startServer, type RustyServer, type StartOptions } from './server.ts';
export {
  CONFIG_FIELDS,
  ConfigError,
  describeConfig,
  loadConfig,
  type ConfigField,
  type ConfigSources,
  type ServerConfig,
} from './config/config.ts';
