/**
 * Splits what is typed into a shell into complete statements: a statement ends at a `;` outside
 * quotes ('…', "…", `…`, […]) and comments (-- …, /* … *\/). What follows the last `;` is kept until
 * more lines arrive.
 */
export function splitStatements(text: string): { statements: string[]; rest: string } {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      const end = closeQuote(text, i + 1, c);
      if (end === -1) break;
      i = end + 1;
    } else if (c === '[') {
      const end = text.indexOf(']', i + 1);
      if (end === -1) break;
      i = end + 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i + 2);
      i = end === -1 ? text.length : end + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1) break;
      i = end + 2;
    } else if (c === ';') {
      const statement = text.slice(start, i + 1).trim();
      if (statement !== ';') statements.push(statement);
      start = i + 1;
      i++;
    } else i++;
  }
  return { statements, rest: text.slice(start) };
}

/** The index of the quote closing one opened before `from` ('' doubles a quote inside); -1 if none. */
function closeQuote(text: string, from: number, quote: string): number {
  let i = from;
  while (i < text.length) {
    const end = text.indexOf(quote, i);
    if (end === -1) return -1;
    if (text[end + 1] === quote) {
      i = end + 2;
      continue;
    }
    return end;
  }
  return -1;
}

/** True when `text` holds nothing but whitespace and comments. */
export function isBlank(text: string): boolean {
  return (
    text
      .replace(/--[^\n]*/g, '')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .trim() === ''
  );
}
