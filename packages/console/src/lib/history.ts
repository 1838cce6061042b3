/** The SQL editor's history: the last statements run, newest first, kept in localStorage. */
export interface HistoryEntry {
  sql: string;
  at: string;
  rows?: number;
  ms?: number;
  error?: string;
}

const KEY = 'rustydb.console.history';
const MAX = 100;

export function loadHistory(): HistoryEntry[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(KEY) ?? '[]') as unknown;
    return Array.isArray(parsed) ? (parsed as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

export function addToHistory(entry: HistoryEntry): HistoryEntry[] {
  const next = [entry, ...loadHistory().filter((e) => e.sql !== entry.sql)].slice(0, MAX);
  localStorage.setItem(KEY, JSON.stringify(next));
  return next;
}

export function clearHistory(): void {
  localStorage.removeItem(KEY);
}
