/**
 * Aggregation pipelines compiled to ONE SELECT in the engine's dialect (see document-dialect.ts): a
 * chain of CTEs, one (or two, for `$group`) per stage, each with columns `doc` (the dialect's JSON)
 * and `ord` (position after a `$sort`, else NULL). The statement returns one column, `doc`, in
 * pipeline order.
 *
 * Stages: `$match` (a filter, see filter-compiler.ts; leading `$match` stages filter the table
 * itself, where `_id` can use the primary key), `$project` (see projection-compiler.ts; also
 * `name: '$path'`), `$sort`, `$limit`, `$skip`, `$group` (see group-compiler.ts) and `$count`.
 * Anything else is refused with INVALID_MESSAGE naming the stage. Documents coming out of `$group`
 * have no defined order, as in MongoDB, until a `$sort`.
 */
import { collectionTable } from './collection-name.ts';
import type { DocumentDialect } from './document-dialect.ts';
import { describeValue, documentError } from './document-errors.ts';
import { isFieldName } from './field-path.ts';
import { filterSql } from './filter-compiler.ts';
import { groupStage } from './group-compiler.ts';
import { isPlainObject } from './json-values.ts';
import { parseProjection } from './projection-compiler.ts';
import { sortTerms } from './sort-compiler.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { AliasSource, allOf, join, raw, sql, toCompiled, type CompiledSql } from './sql-fragment.ts';

export const MAX_PIPELINE_STAGES = 100;

/** `ord` of rows in no particular order (typed, so PostgreSQL does not take it for text). */
const NO_ORDER = raw('CAST(NULL AS INTEGER)');

const STAGES = ['$match', '$project', '$sort', '$limit', '$skip', '$group', '$count'];

interface Stage {
  name: string;
  spec: unknown;
  where: string;
}

function parseStages(pipeline: unknown): Stage[] {
  if (!Array.isArray(pipeline)) throw documentError('pipeline must be an array of stages');
  if (pipeline.length > MAX_PIPELINE_STAGES) {
    throw documentError(`pipeline has more than ${MAX_PIPELINE_STAGES} stages`);
  }
  return pipeline.map((stage, i) => {
    const entries = isPlainObject(stage) ? Object.entries(stage) : [];
    if (entries.length !== 1) {
      throw documentError(
        `pipeline[${i}] must be an object with exactly one stage, got ${describeValue(stage)}`,
      );
    }
    const [name, spec] = entries[0]!;
    if (!STAGES.includes(name)) {
      throw documentError(`pipeline[${i}]: unsupported stage '${name}' (supported: ${STAGES.join(', ')})`);
    }
    return { name, spec, where: `pipeline[${i}].${name}` };
  });
}

function positiveCount(spec: unknown, where: string, minimum: number): number {
  if (typeof spec !== 'number' || !Number.isSafeInteger(spec) || spec < minimum) {
    throw documentError(`${where} must be an integer >= ${minimum}`);
  }
  return spec;
}

export function compileAggregate(
  collection: string,
  pipeline: unknown,
  dialect: DocumentDialect = sqliteDialect,
): CompiledSql {
  const table = collectionTable(collection);
  const stages = parseStages(pipeline);
  const aliases = new AliasSource();
  let names = 0;
  const nextName = (prefix: string) => raw(`${prefix}${names++}`);

  const leading = stages.findIndex((stage) => stage.name !== '$match');
  const matches = leading === -1 ? stages : stages.slice(0, leading);
  const filters = matches.map((stage) => filterSql(stage.spec, { aliases, idColumn: true, dialect }));
  const where = filters.length === 0 ? dialect.TRUE : allOf(filters);
  let current = nextName('s');
  const ctes = [sql`${current}(doc, ord) AS (SELECT doc, ${NO_ORDER} FROM ${table} WHERE ${where})`];
  /** Whether `ord` holds the order of the rows (a $sort has run since the last $group). */
  let ordered = false;

  for (const stage of stages.slice(matches.length)) {
    const input = current;
    current = nextName('s');
    const orderBy = ordered ? raw(' ORDER BY ord') : raw('');
    switch (stage.name) {
      case '$match': {
        const filter = filterSql(stage.spec, { aliases, idColumn: false, dialect });
        ctes.push(sql`${current}(doc, ord) AS (SELECT doc, ord FROM ${input} WHERE ${filter})`);
        break;
      }
      case '$project': {
        const plan = parseProjection(stage.spec, { computed: true, where: stage.where });
        const projection = plan ? dialect.project(plan, aliases) : raw('doc');
        // Materialized: SQLite would otherwise substitute the projection for every mention of `doc`
        // in later stages, computing it once per mention instead of once per document.
        ctes.push(sql`${current}(doc, ord) AS MATERIALIZED (SELECT ${projection}, ord FROM ${input})`);
        break;
      }
      case '$sort': {
        const terms = sortTerms(stage.spec, stage.where, dialect);
        if (terms.length === 0) throw documentError(`${stage.where} needs at least one key`);
        // Ties keep the order they had, so successive sorts compose.
        const keys = join(ordered ? [...terms, raw('ord')] : terms, ', ');
        ctes.push(
          sql`${current}(doc, ord) AS (SELECT doc, ROW_NUMBER() OVER (ORDER BY ${keys}) FROM ${input})`,
        );
        ordered = true;
        break;
      }
      case '$limit': {
        const limit = dialect.limitClause(positiveCount(stage.spec, stage.where, 1), undefined);
        ctes.push(sql`${current}(doc, ord) AS (SELECT doc, ord FROM ${input}${orderBy}${limit})`);
        break;
      }
      case '$skip': {
        const skip = dialect.limitClause(undefined, positiveCount(stage.spec, stage.where, 0));
        ctes.push(sql`${current}(doc, ord) AS (SELECT doc, ord FROM ${input}${orderBy}${skip})`);
        break;
      }
      case '$group':
        ctes.push(
          ...groupStage(stage.spec, { input, groups: nextName('g'), output: current }, stage.where, dialect),
        );
        ordered = false;
        break;
      case '$count': {
        if (typeof stage.spec !== 'string' || !isFieldName(stage.spec)) {
          throw documentError(`${stage.where} needs an output field name of letters, digits and _`);
        }
        const count = dialect.accumulator({ operator: '$count' });
        const document = dialect.object([[stage.spec, count.output([raw('COUNT(*)')])]]);
        // No input, no output document, as in MongoDB.
        ctes.push(
          sql`${current}(doc, ord) AS (SELECT ${document}, ${NO_ORDER} FROM ${input} HAVING COUNT(*) > 0)`,
        );
        ordered = false;
        break;
      }
    }
  }
  return toCompiled(
    sql`WITH ${join(ctes, ', ')} SELECT doc FROM ${current}${ordered ? raw(' ORDER BY ord') : raw('')}`,
  );
}
