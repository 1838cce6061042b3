/** What each benchmark hands back to the runner, and how the runner renders it. */

export interface BenchContext {
  /** Data directory holding the dataset; each benchmark starts its own server on it. */
  dataDir: string;
  /** When set, servers run with --cpu-prof and write their profiles here. */
  cpuProfileDir?: string;
  log(line: string): void;
}

export interface Target {
  /** e.g. "rows/s ratio >= 0.7" */
  name: string;
  /** The measured value, formatted. */
  measured: string;
  met: boolean;
}

export interface BenchReport {
  /** "a" .. "d" */
  key: string;
  title: string;
  /** Markdown: tables and notes, without the title. */
  markdown: string;
  targets: Target[];
}

/** A markdown table from a header row and body rows. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
