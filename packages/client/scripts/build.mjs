#!/usr/bin/env node
/**
 * Builds the browser ESM bundles of @rustydb/client into dist/ (or the directory given):
 *   index.js  the SDK (with the protocol's code tables inlined; `ws` is never included: the package's
 *             `#websocket` import resolves to the browser's WebSocket under the "browser" condition)
 *   react.js  the React bindings; `react` stays an import for the application's bundler or import map
 * Shared code lands in a chunk both import. Node uses the TypeScript sources directly.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the bundles; returns esbuild's metafile (what went into each output). */
export async function buildClient({ outdir = join(packageDir, 'dist'), minify = false } = {}) {
  const result = await build({
    absWorkingDir: packageDir,
    entryPoints: { index: 'src/index.ts', react: 'src/react/index.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
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
