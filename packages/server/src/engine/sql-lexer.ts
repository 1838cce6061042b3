/**
 * A small SQL lexer: enough to split a text into statements and to see the words outside strings,
 * quoted identifiers and comments. It is deliberately conservative; the engine remains the real gate.
 */

export interface SqlToken {
  /** Upper-cased word, or the punctuation character. Quoted identifiers keep their (unquoted) text. */
  text: string;
  kind: 'word' | 'quoted' | 'string' | 'punct' | 'number' | 'param';
  /** Where the token starts in the text given to the lexer (quotes included). */
  start: number;
  /** Where it ends (exclusive). */
  end: number;
}

export interface LexedStatement {
  tokens: SqlToken[];
  text: string;
}

function isWordChar(c: string): boolean {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/** Splits SQL text into statements (trigger bodies' inner semicolons do not split). */
export function lexStatements(sql: string): LexedStatement[] {
  const statements: LexedStatement[] = [];
  let tokens: SqlToken[] = [];
  let start = 0;
  let blockDepth = 0; // BEGIN … END inside CREATE TRIGGER, and CASE … END
  let i = 0;
  const n = sql.length;

  const isTrigger = (): boolean => {
    const words = tokens.filter((t) => t.kind === 'word').map((t) => t.text);
    if (words[0] !== 'CREATE') return false;
    const afterCreate = words[1] === 'TEMP' || words[1] === 'TEMPORARY' ? words[2] : words[1];
    return afterCreate === 'TRIGGER';
  };

  const finish = (end: number): void => {
    if (tokens.length > 0) statements.push({ tokens, text: sql.slice(start, end).trim() });
    tokens = [];
    start = end + 1;
    blockDepth = 0;
  };

  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? n : close + 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const closer = c === '[' ? ']' : c;
      let j = i + 1;
      let text = '';
      while (j < n) {
        if (sql[j] === closer) {
          if (closer !== ']' && sql[j + 1] === closer) {
            text += closer;
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j];
        j++;
      }
      tokens.push({ text, kind: c === "'" ? 'string' : 'quoted', start: i, end: Math.min(j + 1, n) });
      i = j + 1;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === ';') {
      if (blockDepth > 0) {
        tokens.push({ text: ';', kind: 'punct', start: i, end: i + 1 });
        i++;
        continue;
      }
      finish(i);
      i++;
      continue;
    }
    if (c === '?' || ((c === ':' || c === '@' || c === '$') && isWordChar(sql[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && isWordChar(sql[j]!)) j++;
      tokens.push({ text: sql.slice(i, j), kind: 'param', start: i, end: j });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
      tokens.push({ text: sql.slice(i, j), kind: 'number', start: i, end: j });
      i = j;
      continue;
    }
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql[j]!)) j++;
      const word = sql.slice(i, j).toUpperCase();
      tokens.push({ text: word, kind: 'word', start: i, end: j });
      if (word === 'CASE') blockDepth++;
      else if (word === 'BEGIN' && isTrigger()) blockDepth++;
      else if (word === 'END' && blockDepth > 0) blockDepth--;
      i = j;
      continue;
    }
    tokens.push({ text: c, kind: 'punct', start: i, end: i + 1 });
    i++;
  }
  finish(n);
  return statements;
}
