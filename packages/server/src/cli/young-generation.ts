/**
 * Keeps V8's young generation at its initial size while the server starts (issue 10, idle memory).
 *
 * Loading the server's modules and opening the engine allocates tens of MB of objects that live on.
 * V8 reads that as "most young objects survive" and doubles the young generation's semi-spaces at each
 * scavenge, up to their maximum: the process then holds 16 MB of resident, mostly empty young space
 * until V8's memory reducer notices it is idle (about 10 s later). Not growing it during start-up
 * (growth factor 1) promotes the survivors to the old generation, where they belong; the normal
 * factor is restored once the server listens, so a busy server grows its young generation as before.
 *
 * The flag is V8's `--semi-space-growth-factor`, read at every growth decision; an operator who set it
 * (or the semi-space sizes) in NODE_OPTIONS or on node's command line is left alone.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default (flag-definitions.h). */
const DEFAULT_GROWTH_FACTOR = 2;

function operatorChoseSemiSpaces(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.some((arg) => /semi[-_]space/.test(arg));
}

/** Holds the young generation at its size until the returned function is called. */
export function holdYoungGeneration(): () => void {
  if (operatorChoseSemiSpaces()) return () => {};
  setFlagsFromString('--semi-space-growth-factor=1');
  return () => setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}
