/**
 * Column types to GraphQL scalars, following SQLite's type-affinity rules on the declared type:
 *
 * | declared type contains          | kind      | GraphQL scalar |
 * | ------------------------------- | --------- | -------------- |
 * | BOOL                            | boolean   | Boolean        |
 * | INT                             | integer   | BigInt         |
 * | CHAR, CLOB, TEXT                | text      | String         |
 * | BLOB                            | blob      | Base64         |
 * | REAL, FLOA, DOUB                | real      | Float          |
 * | nothing (untyped), or else      | any       | JSON           |
 *
 * INTEGER columns use `BigInt` rather than `Int`: GraphQL's Int is 32-bit and SQLite integers are 64.
 */
import {
  GraphQLBoolean,
  GraphQLError,
  GraphQLFloat,
  GraphQLScalarType,
  GraphQLString,
  Kind,
  valueFromASTUntyped,
  type ValueNode,
} from 'graphql';
import type { SqlValue } from '@rustydb/protocol';

export type ColumnKind = 'boolean' | 'integer' | 'text' | 'blob' | 'real' | 'any';

export function columnKind(declaredType: string): ColumnKind {
  const type = declaredType.toUpperCase();
  if (type.includes('BOOL')) return 'boolean';
  if (type.includes('INT')) return 'integer';
  if (/CHAR|CLOB|TEXT/.test(type)) return 'text';
  if (type.includes('BLOB')) return 'blob';
  if (/REAL|FLOA|DOUB/.test(type)) return 'real';
  return 'any';
}

const DIGITS = /^-?\d{1,20}$/;

function bigIntInput(value: unknown): number | string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  // Beyond 2^53 a whole number travels as a string of digits; SQLite stores it as an exact INTEGER.
  if (typeof value === 'string' && DIGITS.test(value)) {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  }
  throw new GraphQLError(`BigInt cannot represent ${JSON.stringify(value)}: expected a whole number`);
}

export const BigIntScalar = new GraphQLScalarType({
  name: 'BigInt',
  description:
    'A 64-bit whole number (SQLite INTEGER). Output as a JSON number; input as a number or, beyond 2^53, a string of digits. ' +
    'A value that SQLite stored in the column as another type (SQLite typing is flexible) is returned as it is.',
  serialize(value) {
    if (typeof value === 'bigint')
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    return value;
  },
  parseValue: bigIntInput,
  parseLiteral(ast: ValueNode) {
    if (ast.kind === Kind.INT || ast.kind === Kind.STRING) return bigIntInput(ast.value);
    throw new GraphQLError('BigInt literal must be an integer or a string of digits', { nodes: ast });
  },
});

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64Input(value: unknown): { $base64: string } {
  if (typeof value === 'string' && value.length % 4 === 0 && BASE64.test(value)) return { $base64: value };
  throw new GraphQLError('Base64 expects a base64-encoded string');
}

export const Base64Scalar = new GraphQLScalarType({
  name: 'Base64',
  description: 'Binary data (SQLite BLOB), base64-encoded.',
  serialize(value) {
    if (value !== null && typeof value === 'object' && '$base64' in value)
      return (value as { $base64: string }).$base64;
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    if (typeof value === 'string') return Buffer.from(value, 'utf8').toString('base64');
    return Buffer.from(String(value), 'utf8').toString('base64');
  },
  parseValue: base64Input,
  parseLiteral(ast: ValueNode) {
    if (ast.kind === Kind.STRING) return base64Input(ast.value);
    throw new GraphQLError('Base64 literal must be a string', { nodes: ast });
  },
});

export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description:
    'Any JSON value. Untyped columns hold whatever was stored; objects and arrays written to a column are stored as JSON text; a blob reads as {"$base64": "…"}.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});

export function scalarFor(kind: ColumnKind): GraphQLScalarType {
  switch (kind) {
    case 'boolean':
      return GraphQLBoolean;
    case 'integer':
      return BigIntScalar;
    case 'text':
      return GraphQLString;
    case 'blob':
      return Base64Scalar;
    case 'real':
      return GraphQLFloat;
    case 'any':
      return JSONScalar;
  }
}

/** The name of each kind's comparison input type (`where` operators). */
export function comparisonTypeName(kind: ColumnKind): string {
  return `${scalarFor(kind).name}Comparison`;
}

/**
 * A value bound to a `?` for a column (already coerced by its scalar when it came through a typed
 * argument; raw JSON when it came through a JSON one). Objects and arrays become JSON text.
 */
export function toSqlValue(value: unknown): SqlValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (
      keys.length === 1 &&
      keys[0] === '$base64' &&
      typeof (value as { $base64: unknown }).$base64 === 'string'
    ) {
      return value as { $base64: string };
    }
  }
  return JSON.stringify(value);
}
