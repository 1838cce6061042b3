/**
 * Bundles a test page for the browser with esbuild (platform browser: the native WebSocket, never
 * `ws`; the SDK from its sources) into a fresh directory with an index.html that loads it from
 * `/page/app.js`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface PageBundle {
  dir: string;
  /** The source files that contributed code to the bundle. */
  inputs: string[];
  remove(): void;
}

export async function bundlePage(entry: string): Promise<PageBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-page-'));
  try {
    const result = await build({
      entryPoints: [entry],
      outfile: join(dir, 'app.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      // The SDK from its sources, as every test uses it.
      conditions: ['rustydb-source'],
      target: 'es2022',
      define: { 'process.env.NODE_ENV': '"development"' },
      metafile: true,
      logLevel: 'warning',
    });
    // What contributed code to the bundle (tree-shaken modules are parsed but contribute nothing).
    const inputs = Object.values(result.metafile.outputs).flatMap((output) =>
      Object.entries(output.inputs)
        .filter(([, input]) => input.bytesInOutput > 0)
        .map(([path]) => path),
    );
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><title>RustyDB test</title><div id="root"></div><script type="module" src="/page/app.js"></script>',
    );
    return { dir, inputs, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
