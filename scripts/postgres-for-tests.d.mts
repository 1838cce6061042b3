export interface TestPostgres {
  url: string;
  port: number;
  dataDir: string;
  binDir: string;
  stop(): void;
  /** A fast stop that keeps the data; does not block this process (a server in it keeps running). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}
export function findPostgresBin(): string | undefined;
export function startTestPostgres(binDir?: string): Promise<TestPostgres>;
