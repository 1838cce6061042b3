#!/usr/bin/env node
// The `rustydb` command: runs the compiled JavaScript in dist/ (built by `npm install` in the
// repository, shipped in the package), with no TypeScript loader in the process.
try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('/dist/cli/main.js')) throw err;
  process.stderr.write(
    'rustydb: the server is not built (no dist/): run `npm run build` in the repository\n',
  );
  process.exit(1);
}
