/**
 * `rustydb backup --to FILE`: asks a running server for a consistent copy of its database (over its
 * HTTP API, as an administrator) and saves it. `rustydb restore --from FILE`: puts such a copy in place
 * of the database in the data directory, with the server stopped. See docs/operations.md.
 */
import { createWriteStream, fsyncSync, openSync as openFd, closeSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { loadConfig } from '../config/config.ts';
import { UsageError, connect, option } from './admin-commands.ts';
import type { ParsedArgs } from './args.ts';

export const BACKUP_USAGE = `backups (see docs/operations.md):
  rustydb backup --to FILE        a consistent copy of a running server's database, taken while it runs
                                  (connection options as for 'user'; needs ADMIN)
  rustydb restore --from FILE     put a backup in place of the database in --data-dir (the server stopped);
                                  the database it replaces is kept as rustydb.sqlite.before-restore-TIME`;

/** Flushes a finished file to the disk, so that the rename after it cannot leave an empty file behind. */
function flushToDisk(file: string): void {
  const fd = openFd(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function runBackup(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const to = option(args, 'to', undefined);
  if (to === undefined) throw new UsageError('missing --to FILE');
  const conn = await connect(args, env);
  let res: Response;
  try {
    res = await fetch(`${conn.url}/api/v1/admin/backup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${conn.token}` },
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new Error(`cannot reach ${conn.url}: ${cause?.code ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = { message: text.slice(0, 200) };
    }
    throw new Error(`${error?.code ?? `HTTP ${res.status}`}: ${error?.message ?? 'backup failed'}`);
  }
  // Written whole under another name first: FILE is never a partial backup.
  const target = resolve(to);
  const partial = `${target}.partial`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream),
      createWriteStream(partial, { mode: 0o600 }),
    );
    flushToDisk(partial);
    renameSync(partial, target);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  const bytes = Number(res.headers.get('content-length') ?? 0);
  const sequence = res.headers.get('x-rustydb-sequence') ?? '?';
  return `backup written to ${target}: ${bytes} bytes, change-log position ${sequence}`;
}

export async function runRestore(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const from = option(args, 'from', undefined);
  if (from === undefined) throw new UsageError('missing --from FILE');
  const config = loadConfig({
    flags: args.config,
    env,
    ...(args.configFile ? { file: args.configFile } : {}),
  });
  if (config.engine !== 'sqlite') {
    throw new UsageError(
      `restore brings back a backup of the sqlite engine; the ${config.engine} engine uses its database's own tools`,
    );
  }
  const { restoreBackup } = await import('../engine/sqlite/backup.ts');
  const { DATABASE_FILE } = await import('../engine/sqlite/sqlite-engine.ts');
  const result = restoreBackup(resolve(from), join(config.data_dir, DATABASE_FILE));
  return (
    `restored ${resolve(from)} into ${config.data_dir} (the backup's change-log position: ${result.backupSequence}; ` +
    `the log continues after ${result.sequence}, subscribers resuming from before get a reset)` +
    (result.previous ? `\nthe replaced database was kept as ${result.previous}` : '')
  );
}
