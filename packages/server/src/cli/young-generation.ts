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
import { availableParallelism } from 'node:os';
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

/**
 * Scavenges the young generation on the main thread alone where the machine has two cores or fewer.
 *
 * V8 splits each scavenge among its platform's worker threads (four here) and the main thread waits
 * for all of them. On a 2-core machine with other work those workers must first be given a core: in
 * bench (b) on the shared 2-core host, scavenges of RustyDB's ~1.5 MB young generation paused the main
 * thread 0.33–0.41 ms at the median, 0.45–1.2 ms at p90 and 16–60 ms at worst (three 15,000-query runs,
 * load 4–6); done by the main thread alone, 0.23–0.32 ms, 0.37–0.42 ms and 0.46–0.69 ms in the runs
 * alternated with them. A young generation this small holds little to copy: splitting it saves less than
 * waking the helpers costs. `--parallel-scavenge` is read at every scavenge; an operator who set it on
 * node's command line is left alone (node refuses it in NODE_OPTIONS).
 */
export function scavengeOnMainThreadOnSmallMachines(cores: number = availableParallelism()): boolean {
  if (cores > 2 || process.execArgv.some((arg) => /parallel[-_]scavenge/.test(arg))) return false;
  setFlagsFromString('--no-parallel-scavenge');
  return true;
}
