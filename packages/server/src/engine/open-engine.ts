/** Opens the engine the configuration names: embedded SQLite, or a PostgreSQL database. */
import type { ServerConfig } from '../config/config.ts';
import type { Engine } from './engine.ts';
import type { Logger } from '../core/logger.ts';
import { SqliteEngine } from './sqlite/sqlite-engine.ts';

export async function openEngine(config: ServerConfig, logger: Logger): Promise<Engine> {
  if (config.engine === 'postgres') {
    // Loaded only when chosen: node-postgres costs every other start (and every CLI command) its load time.
    const { PostgresEngine } = await import('./postgres/postgres-engine.ts');
    return PostgresEngine.open({
      databaseUrl: config.database_url!,
      poolSize: config.engine_pool_size,
      logger,
    });
  }
  return SqliteEngine.open({ dataDir: config.data_dir, poolSize: config.engine_pool_size });
}
