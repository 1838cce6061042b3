// Preload (`--import`) that records the URL of every module the process loads through the ES module
// loader, one per line, in the file named by RUSTYDB_MODULE_LOG: a test can then see what a process
// ran (compiled JavaScript, or TypeScript through a loader). Plain JavaScript, so it needs no loader.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url, { data: { logFile: process.env.RUSTYDB_MODULE_LOG } });
