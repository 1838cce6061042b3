#!/usr/bin/env node
/**
 * Builds the browser ESM bundles of @rustydb/client into dist/browser/ (or the directory given), what the
 * package's `browser` export condition points at:
 *   index.js  the SDK (with the protocol's code tables inlined; `ws` is never included: the package's
 *             `#websocket` import resolves to the browser's WebSocket under the "browser" condition)
 *   react.js  the React bindings; `react` stays an import for the application's bundler or import map
 * Shared code lands in a chunk both import. Bundled from the sources; the modules in dist/ beside it
 * (what Node and the type declarations use) come from `tsc -b tsconfig.build.json`.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the bundles; returns esbuild's metafile (what went into each output). */
export async function buildClient({ outdir = join(packageDir, 'dist', 'browser'), minify = false } = {}) {
  const result = await build({
    absWorkingDir: packageDir,
    entryPoints: { index: 'src/index.ts', react: 'src/react/index.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    // The workspace's own packages from their TypeScript sources (see the `rustydb-source` condition).
    conditions: ['rustydb-source'],
    target: 'es2022',
    external: ['react', 'react-dom'],
    sourcemap: true,
    minify,
    metafile: true,
    logLevel: 'warning',
  });
  return result.metafile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2] ? resolve(process.argv[2]) : undefined;
  const metafile = await buildClient(outdir ? { outdir } : {});
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!file.endsWith('.map')) console.log(`${file}  ${(output.bytes / 1024).toFixed(1)} KiB`);
  }
}
