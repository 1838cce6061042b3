/**
 * Large writes nobody reads back must not grow the server: 512 KB documents inserted back to back leave
 * nothing of themselves behind once written. The server runs as a process of its own (see
 * helpers/paused-clients.ts), so that its RSS is the server's alone.
 */
import { describe, test } from 'node:test';
import { checkSurface, insertWideDocuments, WARM_DOCUMENTS } from './helpers/paused-clients.ts';

/** Documents inserted back to back, with nobody watching. */
const LOADED_DOCUMENTS = 160;

describe('large writes: the server stays within +50 MB', () => {
  // Every insert runs on a pooled connection, which keeps the statements it ran until it closes: each
  // held a copy of its 512 KB document, and 160 of them took the server from 150 MB to 260 MB.
  test(
    `${LOADED_DOCUMENTS} documents of 512 KB inserted back to back, with nobody watching`,
    { timeout: 120_000 },
    () =>
      checkSurface(
        async (server) => {
          await insertWideDocuments(server, LOADED_DOCUMENTS);
          return [];
        },
        0,
        (server) => insertWideDocuments(server, WARM_DOCUMENTS, true),
      ),
  );
});
