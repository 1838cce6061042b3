/**
 * The document store: collections of JSON documents, each an ordinary table
 * (`_id TEXT PRIMARY KEY, doc <JSON> NOT NULL, _op TEXT`) named after the collection: JSON text on
 * SQLite, jsonb on PostgreSQL (see the dialects, document-dialect.ts). Every operation is
 * compiled to SQL (see the *-compiler modules) and run through the engine with the caller's privileges,
 * so grants apply to collections exactly as to tables, and every write lands in the change log that
 * change streams read. `_op` records whether the last write replaced the document, for change events.
 */
import { randomBytes } from 'node:crypto';
import type { Caller, Engine, RunOptions, StatementInput } from '../engine/engine.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import { TABLE_PRIVILEGES } from '../auth/privileges.ts';
import { collectionTable, hasCollectionColumns, isValidCollectionName } from './collection-name.ts';
import { compileFind, compileCount, type FindOptions } from './find-compiler.ts';
import { compileAggregate } from './aggregate-compiler.ts';
import { compileReplacement, compileUpdate } from './update-compiler.ts';
import { compileFilter } from './filter-compiler.ts';
import { isPlainObject, type JsonObject } from './json-values.ts';
import { parseFieldPath } from './field-path.ts';
import type { DocumentDialect } from './document-dialect.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { postgresDialect } from './postgres-dialect.ts';
import { bind } from './sql-fragment.ts';

export interface CallContext {
  caller: Caller;
  timeoutMs: number;
  /** Aborting interrupts the call's statements (the client went away). */
  signal?: AbortSignal;
}

/** Documents a single call may insert, and a find may return. */
export const MAX_BULK_DOCUMENTS = 10_000;

function table(name: string): string {
  return collectionTable(name).sql;
}

/** A 24-hex-digit id, time-ordered like MongoDB's ObjectId. */
export function newDocumentId(): string {
  const seconds = Math.floor(Date.now() / 1000)
    .toString(16)
    .padStart(8, '0');
  return seconds + randomBytes(8).toString('hex');
}

function isOperatorUpdate(update: unknown): boolean {
  return isPlainObject(update) && Object.keys(update).some((k) => k.startsWith('$'));
}

/** Top-level equality fields of a filter: what an upsert's new document starts from. */
function upsertSeed(filter: unknown): JsonObject {
  const seed: JsonObject = {};
  if (!isPlainObject(filter)) return seed;
  for (const [key, value] of Object.entries(filter)) {
    if (key.startsWith('$') || key.includes('.')) continue;
    if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) {
      if (Object.keys(value).length === 1 && '$eq' in value) seed[key] = value.$eq as JsonObject;
      continue;
    }
    seed[key] = value as JsonObject;
  }
  return seed;
}

/** A document as the engine hands it back: JSON text (SQLite) or already parsed (PostgreSQL's jsonb). */
function parsedDocument(value: unknown): JsonObject {
  return (typeof value === 'string' ? JSON.parse(value) : value) as JsonObject;
}

export class DocumentService {
  readonly #engine: Engine;
  readonly #dialect: DocumentDialect;

  constructor(engine: Engine) {
    this.#engine = engine;
    this.#dialect = engine.internal.dialect === 'postgres' ? postgresDialect : sqliteDialect;
  }

  async #run(statement: StatementInput, context: CallContext) {
    try {
      return await this.#engine.execute(statement, this.#options(context));
    } catch (err) {
      throw this.#translate(err);
    }
  }

  /** How the engine runs the statements compiled here. */
  #options(context: CallContext): RunOptions {
    return {
      caller: context.caller,
      timeoutMs: context.timeoutMs,
      ...(context.signal ? { signal: context.signal } : {}),
      serverCompiled: true,
    };
  }

  /** Data-dependent update failures come back from the engine as a marked message; surface it plainly. */
  #translate(err: unknown): unknown {
    const message = this.#dialect.failureMessage(err);
    if (message !== undefined) return new RustyError('INVALID_MESSAGE', message);
    const failure = normalizeError(err);
    if (failure.code === 'TABLE_NOT_FOUND') return new RustyError('NOT_FOUND', 'collection not found');
    return err;
  }

  async #requireCollection(name: string): Promise<void> {
    if (!isValidCollectionName(name) || !(await this.#isCollection(name))) {
      throw new RustyError('NOT_FOUND', `collection '${name}' not found`);
    }
  }

  async #isCollection(name: string): Promise<boolean> {
    const columns = await this.#engine.internal.all<{ name: string }>(this.#dialect.columnsSql, [name]);
    return hasCollectionColumns(columns.map((c) => c.name));
  }

  async createCollection(name: string, context: CallContext): Promise<boolean> {
    collectionTable(name);
    if (await this.#isCollection(name)) return false;
    const statements = this.#dialect.createCollection(collectionTable(name)).map((sql) => ({ sql }));
    if (statements.length === 1) await this.#run(statements[0]!, context);
    else {
      try {
        await this.#engine.batch(statements, { ...this.#options(context), transaction: true });
      } catch (err) {
        throw this.#translate(err);
      }
    }
    return true;
  }

  /** The collections the caller holds a privilege on (the catalog is shown to nobody whole but ADMIN). */
  async listCollections(caller: Caller): Promise<string[]> {
    const tables = await this.#engine.internal.all<{ name: string }>(this.#dialect.tablesSql);
    const out: string[] = [];
    for (const { name } of tables) {
      if (!isValidCollectionName(name) || !(await this.#isCollection(name))) continue;
      const held = await this.#engine.holds(
        caller,
        TABLE_PRIVILEGES.map((privilege) => ({ privilege, table: name })),
      );
      if (held.some(Boolean)) out.push(name);
    }
    return out;
  }

  async info(
    name: string,
    context: CallContext,
  ): Promise<{ name: string; count: number; indexes: string[] }> {
    await this.#requireCollection(name);
    const count = await this.count(name, {}, context);
    const indexes = await this.#engine.internal.all<{ name: string }>(this.#dialect.indexesSql, [name]);
    return { name, count, indexes: indexes.map((i) => i.name) };
  }

  async dropCollection(name: string, context: CallContext): Promise<void> {
    await this.#requireCollection(name);
    await this.#run({ sql: `DROP TABLE ${table(name)}` }, context);
  }

  async find(name: string, options: FindOptions, context: CallContext): Promise<JsonObject[]> {
    await this.#requireCollection(name);
    const compiled = compileFind(name, options, this.#dialect);
    const result = await this.#run(compiled, context);
    return result.rows.map((row) => parsedDocument(row[0]));
  }

  async count(name: string, filter: unknown, context: CallContext): Promise<number> {
    await this.#requireCollection(name);
    const result = await this.#run(compileCount(name, filter, {}, this.#dialect), context);
    return Number(result.rows[0]?.[0] ?? 0);
  }

  async aggregate(name: string, pipeline: unknown, context: CallContext): Promise<JsonObject[]> {
    await this.#requireCollection(name);
    const result = await this.#run(compileAggregate(name, pipeline, this.#dialect), context);
    return result.rows.map((row) => parsedDocument(row[0]));
  }

  #prepareDocument(document: unknown): { id: string; text: string } {
    if (!isPlainObject(document)) throw new RustyError('INVALID_MESSAGE', 'a document must be a JSON object');
    const id = document._id ?? newDocumentId();
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
      throw new RustyError('INVALID_MESSAGE', '_id must be a non-empty string of at most 256 characters');
    }
    for (const key of Object.keys(document)) {
      if (key.startsWith('$'))
        throw new RustyError('INVALID_MESSAGE', `field name '${key}' cannot start with $`);
    }
    return { id, text: JSON.stringify({ _id: id, ...document }) };
  }

  #insertStatement(name: string, document: unknown): StatementInput & { id: string } {
    const { id, text } = this.#prepareDocument(document);
    const doc = this.#dialect.documentValue(bind(text));
    return {
      sql: `INSERT INTO ${table(name)} (_id, doc, _op) VALUES (?, ${doc.sql}, 'insert')`,
      params: [id, ...doc.params],
      id,
    };
  }

  async insert(name: string, document: unknown, context: CallContext): Promise<string> {
    await this.#requireCollection(name);
    const statement = this.#insertStatement(name, document);
    try {
      await this.#run(statement, context);
    } catch (err) {
      throw this.#duplicateKey(err, statement.id);
    }
    return statement.id;
  }

  async insertMany(name: string, documents: unknown, context: CallContext): Promise<string[]> {
    await this.#requireCollection(name);
    if (!Array.isArray(documents) || documents.length === 0 || documents.length > MAX_BULK_DOCUMENTS) {
      throw new RustyError(
        'INVALID_MESSAGE',
        `documents must be an array of 1 to ${MAX_BULK_DOCUMENTS} objects`,
      );
    }
    const statements = documents.map((d) => this.#insertStatement(name, d));
    try {
      await this.#engine.batch(statements, { ...this.#options(context), transaction: true });
    } catch (err) {
      const index = (err as RustyError).details?.index;
      throw this.#duplicateKey(
        this.#translate(err),
        typeof index === 'number' ? statements[index]?.id : undefined,
      );
    }
    return statements.map((s) => s.id);
  }

  async update(
    name: string,
    request: { filter?: unknown; update: unknown; upsert?: boolean; multi?: boolean },
    context: CallContext,
  ): Promise<{ matched: number; upsertedId?: string }> {
    await this.#requireCollection(name);
    if (isPlainObject(request.update) && Object.keys(request.update).length === 0) {
      throw new RustyError(
        'INVALID_MESSAGE',
        'update is empty: give update operators or a replacement document',
      );
    }
    const replace = !isOperatorUpdate(request.update);
    if (replace && request.multi)
      throw new RustyError('INVALID_MESSAGE', 'a replacement updates one document: drop multi');
    const expression = replace
      ? compileReplacement(request.update, this.#dialect)
      : compileUpdate(request.update, this.#dialect);
    const where = compileFilter(request.filter ?? {}, { idColumn: true, dialect: this.#dialect });
    const target = request.multi
      ? where
      : { sql: `_id IN (SELECT _id FROM ${table(name)} WHERE ${where.sql} LIMIT 1)`, params: where.params };
    const update: StatementInput = {
      sql: `UPDATE ${table(name)} SET doc = ${expression.sql}, _op = '${replace ? 'replace' : 'update'}' WHERE ${target.sql}`,
      params: [...expression.params, ...target.params],
    };
    if (!request.upsert) {
      const result = await this.#run(update, context);
      return { matched: result.rows_affected };
    }
    // Upsert: the update, and an insert that only happens when nothing matched, in one transaction.
    const seedFields = upsertSeed(request.filter);
    const id = typeof seedFields._id === 'string' ? seedFields._id : newDocumentId();
    const seed = JSON.stringify({ ...seedFields, _id: id });
    const seedDoc = this.#dialect.documentValue(bind(seed));
    const insert: StatementInput = {
      sql: `INSERT INTO ${table(name)} (_id, doc, _op) SELECT ?, ${expression.sql}, 'insert' FROM (SELECT ${seedDoc.sql} AS doc) AS seed
            WHERE NOT EXISTS (SELECT 1 FROM ${table(name)} WHERE ${where.sql})`,
      params: [id, ...expression.params, ...seedDoc.params, ...where.params],
    };
    let results;
    try {
      results = await this.#engine.batch([update, insert], { ...this.#options(context), transaction: true });
    } catch (err) {
      throw this.#translate(err);
    }
    const matched = results[0]?.status === 'success' ? results[0].rows_affected : 0;
    const inserted = results[1]?.status === 'success' ? results[1].rows_affected : 0;
    return inserted > 0 ? { matched, upsertedId: id } : { matched };
  }

  async delete(
    name: string,
    request: { filter?: unknown; multi?: boolean },
    context: CallContext,
  ): Promise<number> {
    await this.#requireCollection(name);
    const where = compileFilter(request.filter ?? {}, { idColumn: true, dialect: this.#dialect });
    const sql = request.multi
      ? `DELETE FROM ${table(name)} WHERE ${where.sql}`
      : `DELETE FROM ${table(name)} WHERE _id IN (SELECT _id FROM ${table(name)} WHERE ${where.sql} LIMIT 1)`;
    return (await this.#run({ sql, params: where.params }, context)).rows_affected;
  }

  async createIndex(name: string, field: string, context: CallContext): Promise<string> {
    await this.#requireCollection(name);
    const segments = parseFieldPath(field, 'index field');
    // Field paths map to index names one to one ('a.b' and 'a_b' must not meet): dots become '$'.
    const indexName = `${name}__${field.replaceAll('.', '$')}`;
    if (!/^[A-Za-z0-9_$]{1,120}$/.test(indexName)) {
      throw new RustyError('INVALID_MESSAGE', 'invalid index field');
    }
    await this.#run({ sql: this.#dialect.createIndex(collectionTable(name), indexName, segments) }, context);
    return indexName;
  }

  #duplicateKey(err: unknown, id: string | undefined): unknown {
    if (!this.#dialect.isDuplicateKey(err)) return err;
    return new RustyError('QUERY_ERROR', `duplicate key: a document with _id '${id ?? '?'}' exists`, {
      duplicate_key: id ?? null,
    });
  }
}
