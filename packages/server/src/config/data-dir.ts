/**
 * The data directory: the database with every password hash, the token signing key and the audit log.
 * The server creates it readable by its own user only (0700) and keeps every file in it at 0600; it will
 * not start on a directory other users can read or write, unless the operator says so
 * (allow_insecure_data_dir), because then the files' own modes are all that protects them.
 */
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/logger.ts';
import { ConfigError } from './config.ts';

const OWNER_ONLY_DIR = 0o700;
const OWNER_ONLY_FILE = 0o600;
/** Any permission for the group or for others. */
const OTHERS = 0o077;

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * Creates the directory (0700) if it is missing, and refuses one that other users can reach; then
 * tightens the files already in it.
 */
export function prepareDataDir(dir: string, allowInsecure: boolean, logger: Logger): void {
  try {
    // `mode` applies to every directory created on the way; umask can only take permissions away.
    mkdirSync(dir, { recursive: true, mode: OWNER_ONLY_DIR });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new ConfigError('data_dir', `${dir} is not a directory`);
    throw new ConfigError('data_dir', `cannot create ${dir}: ${code ?? (err as Error).message}`);
  }
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new ConfigError('data_dir', `${dir} is not a directory`);
  if ((stat.mode & OTHERS) !== 0) {
    const what = `${dir} can be read or entered by other users (mode ${octal(stat.mode)}); it holds the database with every password hash and the token signing key`;
    if (!allowInsecure) {
      throw new ConfigError(
        'data_dir',
        `${what}. Run \`chmod 700 ${dir}\`, or set allow_insecure_data_dir to start anyway`,
      );
    }
    logger.warn(`data_dir: ${what}; starting anyway because allow_insecure_data_dir is set`);
  }
  tightenDataFiles(dir, logger);
}

/**
 * Makes every file directly in `dir` 0600. SQLite creates the -wal and -shm files with the mode of the
 * database file, so once that is 0600 they follow.
 */
export function tightenDataFiles(dir: string, logger: Logger): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(dir, entry.name);
    try {
      if ((statSync(path).mode & OTHERS) !== 0) chmodSync(path, OWNER_ONLY_FILE);
    } catch (err) {
      // A file of another user (or gone meanwhile): say so rather than stop.
      logger.warn(`data_dir: cannot make ${path} readable by its owner only`, {
        error: (err as Error).message,
      });
    }
  }
}
