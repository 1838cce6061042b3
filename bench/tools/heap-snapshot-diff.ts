/**
 * Compares two V8 heap snapshots of one process (written by soak-memory-probe.ts, or any
 * v8.writeHeapSnapshot): objects and bytes by constructor in each, the difference, and the objects
 * alive in the second that the first did not have (V8 keeps an object's snapshot id for its life, so
 * these were allocated in between and survived), grouped by constructor. What a leak leaves is there.
 *
 *   node --import tsx bench/tools/heap-snapshot-diff.ts A.heapsnapshot B.heapsnapshot [rows]
 */
import { eachHeapNode } from '../lib/heap-snapshot.ts';

interface Group {
  count: number;
  bytes: number;
}

/** Objects by "type:name" (the constructor's name for objects), and the ids alive. */
function load(path: string): {
  groups: Map<string, Group>;
  ids: Map<number, string>;
  sizes: Map<number, number>;
} {
  const groups = new Map<string, Group>();
  const ids = new Map<number, string>();
  const sizes = new Map<number, number>();
  eachHeapNode(path, ({ type, name, id, size }) => {
    // Strings are grouped as one kind: their text would make a group per value.
    const key =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? type
        : `${type}:${name.slice(0, 60)}`;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += size;
    groups.set(key, group);
    ids.set(id, key);
    sizes.set(id, size);
  });
  return { groups, ids, sizes };
}

const [pathA, pathB, rowsArg] = process.argv.slice(2);
if (!pathA || !pathB) {
  console.error('usage: heap-snapshot-diff.ts A.heapsnapshot B.heapsnapshot [rows]');
  process.exit(2);
}
const rows = Number(rowsArg ?? 25);
const a = load(pathA);
const b = load(pathB);
const total = (groups: Map<string, Group>): Group =>
  [...groups.values()].reduce((s, g) => ({ count: s.count + g.count, bytes: s.bytes + g.bytes }), {
    count: 0,
    bytes: 0,
  });
const ta = total(a.groups);
const tb = total(b.groups);
console.log(
  `A: ${ta.count} objects, ${(ta.bytes / 1e6).toFixed(2)} MB; B: ${tb.count} objects, ${(tb.bytes / 1e6).toFixed(2)} MB`,
);

const names = new Set([...a.groups.keys(), ...b.groups.keys()]);
const diff = [...names]
  .map((name) => {
    const ga = a.groups.get(name) ?? { count: 0, bytes: 0 };
    const gb = b.groups.get(name) ?? { count: 0, bytes: 0 };
    return { name, count: gb.count - ga.count, bytes: gb.bytes - ga.bytes, countB: gb.count };
  })
  .filter((d) => d.count !== 0 || d.bytes !== 0)
  .sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
console.log(`\nB - A by constructor (largest ${rows} by bytes):`);
for (const d of diff.slice(0, rows)) {
  console.log(
    `${String(d.count).padStart(8)} objects ${String(d.bytes).padStart(10)} B  (${d.countB} in B)  ${d.name}`,
  );
}

const fresh = new Map<string, Group>();
for (const [id, name] of b.ids) {
  if (a.ids.has(id)) continue;
  const group = fresh.get(name) ?? { count: 0, bytes: 0 };
  group.count++;
  group.bytes += b.sizes.get(id)!;
  fresh.set(name, group);
}
const freshTotal = total(fresh);
console.log(
  `\nalive in B, not in A: ${freshTotal.count} objects, ${(freshTotal.bytes / 1e6).toFixed(2)} MB (largest ${rows} by count):`,
);
for (const [name, g] of [...fresh].sort((x, y) => y[1].count - x[1].count).slice(0, rows)) {
  console.log(`${String(g.count).padStart(8)} objects ${String(g.bytes).padStart(10)} B  ${name}`);
}
