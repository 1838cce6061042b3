export interface TestPostgres {
  url: string;
  port: number;
  dataDir: string;
  binDir: string;
  /** The server's main process (postmaster), while it runs. */
  readonly pid: number;
  /** A role with LOGIN, CREATEROLE, REPLICATION owning a new database of the same name; its URL. */
  createDatabase(name: string, rolePassword: string): string;
  stop(): void;
  /** A fast stop that keeps the data; does not block this process (a server in it keeps running). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}
export function findPostgresBin(): string | undefined;
export function postgresBinProblem(binDir?: string): string | undefined;
export function startTestPostgres(binDir?: string, options?: { parentDir?: string }): Promise<TestPostgres>;
