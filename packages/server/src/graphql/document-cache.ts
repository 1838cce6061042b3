/**
 * GraphQL documents parsed and validated once, not at every request. Clients send the same few
 * operations over and over — a mutation per write, the same subscription from every subscriber — and
 * graphql-js's `validate` takes ~0.3 ms even for a one-line mutation (every rule visits every node):
 * for the GraphQL subscription bench's rounds that was a mutation's validation per round, and 1,000 of
 * them while its subscribers connect.
 *
 * - A query text is parsed once while it is among the last MAX_DOCUMENTS texts (each at most
 *   MAX_SOURCE_LENGTH characters, so the cache stays small); a text that does not parse is parsed, and
 *   throws, each time. The documents are shared: graphql-js never changes a document.
 * - A document is validated once per schema: each view of the catalog (what a caller may read and
 *   write) has a schema object of its own, so one caller's validation never answers for another's
 *   schema. Only a document found valid is remembered; errors are made anew each time (they are handed
 *   to the formatting of each answer).
 * - The rules are this cache's own set; a call with another set validates without the cache.
 */
import {
  parse,
  validate,
  type DocumentNode,
  type GraphQLError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';

/** Query texts whose documents are kept (the least recently used one is dropped beyond this). */
const MAX_DOCUMENTS = 256;
/** Longer query texts are parsed each time. */
const MAX_SOURCE_LENGTH = 16 * 1024;

const NO_ERRORS: readonly GraphQLError[] = Object.freeze([]);

export class DocumentCache {
  readonly #rules: readonly ValidationRule[];
  readonly #documents = new Map<string, DocumentNode>();
  /** The documents found valid, by schema. */
  readonly #valid = new WeakMap<GraphQLSchema, WeakSet<DocumentNode>>();

  constructor(rules: readonly ValidationRule[]) {
    this.#rules = rules;
  }

  /** graphql-js's `parse` of `source`, shared with earlier requests of the same text. */
  parse(source: string): DocumentNode {
    const known = this.#documents.get(source);
    if (known !== undefined) {
      // Most recently used last: the first entry is the one to drop.
      this.#documents.delete(source);
      this.#documents.set(source, known);
      return known;
    }
    const document = parse(source);
    if (source.length <= MAX_SOURCE_LENGTH) {
      if (this.#documents.size >= MAX_DOCUMENTS) this.#documents.delete(this.#documents.keys().next().value!);
      this.#documents.set(source, document);
    }
    return document;
  }

  /** graphql-js's `validate` with `rules` (this cache's own unless given). */
  validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: readonly ValidationRule[] = this.#rules,
  ): readonly GraphQLError[] {
    if (!this.#ownRules(rules)) return validate(schema, document, rules);
    let valid = this.#valid.get(schema);
    if (valid?.has(document)) return NO_ERRORS;
    const errors = validate(schema, document, rules);
    if (errors.length > 0) return errors;
    if (valid === undefined) this.#valid.set(schema, (valid = new WeakSet()));
    valid.add(document);
    return NO_ERRORS;
  }

  /** Whether `rules` are this cache's set (the same rules in the same order). */
  #ownRules(rules: readonly ValidationRule[]): boolean {
    if (rules === this.#rules) return true;
    if (rules.length !== this.#rules.length) return false;
    for (let i = 0; i < rules.length; i++) if (rules[i] !== this.#rules[i]) return false;
    return true;
  }
}
