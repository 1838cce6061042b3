/** Opens the engine the configuration names: embedded SQLite, or a PostgreSQL database. */
import type { Durability, ServerConfig } from '../config/config.ts';
import type { Engine } from './engine.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import { SqliteEngine } from './sqlite/sqlite-engine.ts';

export interface OpenEngineOptions {
  /** Told of failures of the engine's background work (checkpoints), for the server log. */
  onBackgroundError?: (what: string, err: unknown) => void;
  /** Told when the disk becomes full (writes refused) and when it has room again. */
  onStorageChange?: (full: boolean) => void;
  /** The server log, for the engine's own background work (PostgreSQL's change capture). */
  logger?: Logger;
}

export async function openEngine(config: ServerConfig, options: OpenEngineOptions = {}): Promise<Engine> {
  if (config.engine === 'postgres') {
    // Loaded only when chosen: node-postgres costs every other start (and every CLI command) its load time.
    const { PostgresEngine } = await import('./postgres/postgres-engine.ts');
    return PostgresEngine.open({
      databaseUrl: config.database_url!,
      poolSize: config.engine_pool_size,
      logger: options.logger ?? silentLogger,
    });
  }
  const { logger: _logger, ...sqliteOptions } = options;
  return SqliteEngine.open({
    dataDir: config.data_dir,
    poolSize: config.engine_pool_size,
    storageReserveBytes: config.storage_reserve,
    durability: config.durability as Durability,
    ...sqliteOptions,
  });
}
