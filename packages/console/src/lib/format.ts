/** How values read on the page and in exports. */
import type { SqlValue } from '@rustydb/client';

export function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function formatCount(n: number): string {
  return integer.format(n);
}

export function formatNumber(n: number): string {
  return decimal.format(n);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${decimal.format(value)} ${units[unit]}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${decimal.format(ms)} ms` : `${decimal.format(ms / 1000)} s`;
}

/** A typed input value for a column: numbers for numeric affinities, text otherwise. */
export function parseInput(text: string, type: string): SqlValue {
  const affinity = type.toUpperCase();
  const numeric = /INT|REAL|FLOA|DOUB|NUM|DEC|BOOL/.test(affinity);
  if (numeric && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  return text;
}
