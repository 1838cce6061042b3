/**
 * Reads a V8 heap snapshot file (v8.writeHeapSnapshot) node by node: each object's type, name (the
 * constructor's name for objects), id (kept by V8 for the object's life) and own size in bytes.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapNode {
  type: string;
  name: string;
  id: number;
  size: number;
}

export function eachHeapNode(path: string, visit: (node: HeapNode) => void): void {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const idAt = fields.indexOf('id');
  const sizeAt = fields.indexOf('self_size');
  for (let i = 0; i < raw.nodes.length; i += width) {
    visit({
      type: types[raw.nodes[i + typeAt]!]!,
      name: raw.strings[raw.nodes[i + nameAt]!]!,
      id: raw.nodes[i + idAt]!,
      size: raw.nodes[i + sizeAt]!,
    });
  }
}
