/**
 * The smallest view of the libsql driver that the engine relies on. libsql ships loose typings, so the
 * shapes the engine depends on are spelled out here, once.
 */
import { createRequire } from 'node:module';
import type { DriverValue } from './values.ts';

export interface SyncStatement {
  readonly reader: boolean;
  raw(toggle?: boolean): SyncStatement;
  columns(): { name: string }[];
  all(params: DriverValue[]): unknown[][];
  iterate(params: DriverValue[]): IterableIterator<unknown[]>;
  run(params: DriverValue[]): { changes: number; lastInsertRowid: number | bigint };
  get(params: DriverValue[]): unknown[] | undefined;
}

export interface SyncDatabase {
  prepare(sql: string): SyncStatement;
  exec(sql: string): void;
  close(): void;
  readonly inTransaction: boolean;
}

export interface AsyncStatement {
  readonly reader: boolean;
  raw(toggle?: boolean): AsyncStatement;
  columns(): { name: string }[];
  iterate(params: DriverValue[]): Promise<Iterator<unknown[]>>;
  interrupt(): void;
}

export interface AsyncDatabase {
  prepare(sql: string): Promise<AsyncStatement>;
  exec(sql: string): Promise<void>;
  interrupt(): void;
  close(): void;
}

interface DriverOptions {
  /** Busy timeout, seconds. */
  timeout?: number;
}

const require = createRequire(import.meta.url);
const SyncCtor = require('libsql') as new (path: string, options?: DriverOptions) => SyncDatabase;
const AsyncCtor = require('libsql/promise') as new (path: string, options?: DriverOptions) => AsyncDatabase;

export function openSync(path: string, options?: DriverOptions): SyncDatabase {
  return new SyncCtor(path, options);
}

export function openAsync(path: string, options?: DriverOptions): AsyncDatabase {
  return new AsyncCtor(path, options);
}
