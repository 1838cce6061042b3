/** The JSON values documents, filters and updates are made of, and checks on values clients send. */
import { documentError } from './document-errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** A plain object as JSON.parse makes it (not an array, not a class instance). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that a value can be stored as JSON exactly: JSON.stringify would silently turn NaN into null
 * and drop undefined members, so such values are refused instead of being stored altered.
 */
export function assertJsonValue(value: unknown, where: string): asserts value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw documentError(`${where}: numbers must be finite`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertJsonValue(item, `${where}[${i}]`));
    return;
  }
  if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) assertJsonValue(item, `${where}.${key}`);
    return;
  }
  throw documentError(`${where}: ${typeof value} is not a JSON value`);
}

/**
 * True for `{ $gt: 1, $lt: 5 }`, false for a literal sub-document. An object mixing the two is
 * ambiguous, and is refused as MongoDB refuses it.
 */
export function isOperatorObject(value: unknown, where: string): value is Record<string, unknown> {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  const operators = keys.filter((key) => key.startsWith('$')).length;
  if (operators > 0 && operators < keys.length) {
    throw documentError(`${where}: cannot mix operators and field names in one object`);
  }
  return operators > 0;
}

/** Defines an own property even for the key `__proto__`, which plain assignment would not. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
