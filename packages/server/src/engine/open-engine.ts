/** Opens the engine the configuration names: embedded SQLite, or a PostgreSQL database. */
import type { ServerConfig } from '../config/config.ts';
import type { Engine } from './engine.ts';
import { SqliteEngine } from './sqlite/sqlite-engine.ts';
import { PostgresEngine } from './postgres/postgres-engine.ts';

export async function openEngine(config: ServerConfig): Promise<Engine> {
  if (config.engine === 'postgres') {
    return PostgresEngine.open({ databaseUrl: config.database_url!, poolSize: config.engine_pool_size });
  }
  return SqliteEngine.open({ dataDir: config.data_dir, poolSize: config.engine_pool_size });
}
