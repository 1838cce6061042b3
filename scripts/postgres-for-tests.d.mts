export interface TestPostgres {
  url: string;
  port: number;
  dataDir: string;
  binDir: string;
  stop(): void;
  pause(): void;
  resume(): void;
}
export function findPostgresBin(): string | undefined;
export function startTestPostgres(binDir?: string): Promise<TestPostgres>;
