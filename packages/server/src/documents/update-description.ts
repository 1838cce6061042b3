/**
 * MongoDB's `updateDescription` for change streams, computed by comparing a document before and after
 * an update: `updatedFields` maps dotted paths to new values, `removedFields` lists removed paths.
 *
 * Sub-documents are compared field by field (`{'address.city': 'Oslo'}`). Arrays are compared element
 * by element while they keep or grow their length, so a `$push` is reported as the new indexes
 * (`{'tags.2': 'z'}`) as MongoDB does; an array that shrank is reported whole. A value that changed
 * type is reported whole.
 */
import { isDeepStrictEqual } from 'node:util';
import { isPlainObject, setOwn, type JsonObject, type JsonValue } from './json-values.ts';

export interface UpdateDescription {
  updatedFields: Record<string, JsonValue>;
  removedFields: string[];
}

export function describeUpdate(before: JsonObject, after: JsonObject): UpdateDescription {
  const description: UpdateDescription = { updatedFields: {}, removedFields: [] };
  diffObject(before, after, '', description);
  return description;
}

function child(prefix: string, key: string | number): string {
  return prefix === '' ? String(key) : `${prefix}.${key}`;
}

function diffObject(before: JsonObject, after: JsonObject, prefix: string, out: UpdateDescription): void {
  for (const [key, value] of Object.entries(after)) {
    if (Object.hasOwn(before, key)) diffValue(before[key]!, value, child(prefix, key), out);
    else setOwn(out.updatedFields, child(prefix, key), value);
  }
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) out.removedFields.push(child(prefix, key));
  }
}

function diffValue(before: JsonValue, after: JsonValue, path: string, out: UpdateDescription): void {
  if (isDeepStrictEqual(before, after)) return;
  if (isPlainObject(before) && isPlainObject(after)) {
    diffObject(before as JsonObject, after as JsonObject, path, out);
  } else if (Array.isArray(before) && Array.isArray(after) && after.length >= before.length) {
    after.forEach((value, i) => {
      if (i < before.length) diffValue(before[i]!, value, child(path, i), out);
      else setOwn(out.updatedFields, child(path, i), value);
    });
  } else {
    setOwn(out.updatedFields, path, after);
  }
}
