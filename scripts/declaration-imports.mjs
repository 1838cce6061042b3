#!/usr/bin/env node
/**
 * Rewrites the relative `.ts` import suffixes left in emitted type declarations to `.js`:
 *   node scripts/declaration-imports.mjs packages/client/dist
 * `rewriteRelativeImportExtensions` rewrites them in the JavaScript only, and a declaration that
 * imports `./client.ts` resolves only under TypeScript 5 (and only because it tries `.d.ts` next); with
 * `.js`, as in the JavaScript beside it, every TypeScript version and every tool that reads declarations
 * finds the file. The suffix keeps its length, so the declaration maps stay exact.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const RELATIVE_TS_SPECIFIER = /((?:from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g;

function declarationFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node scripts/declaration-imports.mjs DIST_DIR');
  process.exit(2);
}
for (const file of declarationFiles(dir)) {
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(RELATIVE_TS_SPECIFIER, '$1.js$2');
  if (rewritten !== text) writeFileSync(file, rewritten);
}
