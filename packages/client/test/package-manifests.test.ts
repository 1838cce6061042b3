/**
 * Every published package declares what its sources import. Inside the workspace an undeclared import
 * still resolves (npm hoists every package's dependencies to the root), so only an installation from
 * the tarball would show it missing; this test finds it from the sources, in milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const PACKAGES_DIR = fileURLToPath(new URL('../../', import.meta.url));
/** The modules a source file imports: `import`, `export … from`, `import()` and `require()`. */
function importsOf(file: string): string[] {
  const found = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return found.importedFiles.map((entry) => entry.fileName);
}

interface Manifest {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The packages whose sources run from node_modules (the console ships a bundle: its imports are built in). */
const RUNTIME_PACKAGES = ['protocol', 'client', 'server'];

for (const dir of RUNTIME_PACKAGES) {
  test(`@rustydb/${dir} declares every package its sources import`, () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGES_DIR, dir, 'package.json'), 'utf8')) as Manifest;
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const undeclared = new Set<string>();
    for (const file of sourceFiles(join(PACKAGES_DIR, dir, 'src'))) {
      for (const specifier of importsOf(file)) {
        if (/^(\.|node:|#)/.test(specifier)) continue;
        const name = packageOf(specifier);
        if (!declared.has(name)) undeclared.add(`${name} (${file.slice(PACKAGES_DIR.length)})`);
      }
    }
    assert.deepEqual([...undeclared], []);
    assert.notEqual(manifest.private, true, `${manifest.name} is private: it cannot be published`);
  });
}
