/**
 * A process that keeps one core busy for a given share of the time (busy DUTY × 20 ms, then idle for
 * the rest), so that a benchmark can show its figures on a machine that is moderately busy, not only
 * on a quiet one. Run by startCpuBurner; it stops with the bench (bench/lib/children.ts).
 * Usage: node --import tsx bench/lib/cpu-burner.ts DUTY   (0 < DUTY ≤ 1)
 */
import { spawnNode, type Child } from './children.ts';

const PERIOD_MS = 20;

/** Starts a burner busy `duty` of one core; stop it with child.stop(). */
export async function startCpuBurner(duty: number): Promise<Child> {
  const child = spawnNode(['--import', 'tsx'], 'bench/lib/cpu-burner.ts', [String(duty)], process.env);
  await child.waitFor(/burning/);
  return child;
}

function burn(duty: number): void {
  const busyUntil = performance.now() + duty * PERIOD_MS;
  while (performance.now() < busyUntil) {
    // Spin: this is the load.
  }
  setTimeout(() => burn(duty), (1 - duty) * PERIOD_MS);
}

if (process.argv[1]?.endsWith('cpu-burner.ts')) {
  const duty = Number(process.argv[2]);
  if (!(duty > 0 && duty <= 1)) throw new Error(`cpu-burner: duty must be in (0, 1], got ${process.argv[2]}`);
  process.stdout.write('burning\n');
  burn(duty);
}
