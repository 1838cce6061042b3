/**
 * Builds the console into dist/: index.html, one small entry chunk for the first page (sign-in and
 * the shell), and a chunk per page loaded when it is opened (the SQL editor, the GraphQL explorer
 * and the charts are the large ones). Everything is served by the RustyDB server itself.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // The workspace's packages (@rustydb/client) from their TypeScript sources, not their builds.
  resolve: { conditions: ['rustydb-source', ...defaultClientConditions] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // The polyfill would be an inline script, which the Content-Security-Policy forbids; every
    // browser the console supports has modulepreload anyway.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1500,
  },
});
