/**
 * Depth and complexity limits, as validation rules: an operation over either limit is refused before
 * any resolver runs (INVALID_MESSAGE, with the limit and the measured value in `extensions`).
 *
 * - depth: the deepest chain of nested fields (a root field is depth 1);
 * - complexity: every field costs 1, and what is selected under a list field costs once per item
 *   expected: the field's `limit` or `first` argument when written literally, else the page size of
 *   the nearest enclosing field that has one, else 10.
 *
 * Introspection (`__schema`, `__type`) is not counted: `graphql_introspection` governs it. Fragments
 * are followed (a cycle is reported by GraphQL's own NoFragmentCycles rule, and not followed here).
 */
import {
  GraphQLError,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  Kind,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/** Items a list field is assumed to return when nothing says how many. */
export const DEFAULT_LIST_SIZE = 10;

interface Measure {
  depth: number;
  cost: number;
}

function literalInt(
  node: { arguments?: readonly { name: { value: string }; value: { kind: string } }[] },
  names: readonly string[],
): number | undefined {
  for (const arg of node.arguments ?? []) {
    if (names.includes(arg.name.value) && arg.value.kind === Kind.INT) {
      return Number((arg.value as unknown as { value: string }).value);
    }
  }
  return undefined;
}

function measure(
  context: ValidationContext,
  selectionSet: SelectionSetNode,
  type: GraphQLNamedType | undefined,
  pageSize: number,
  fragments: Map<string, FragmentDefinitionNode>,
  visiting: Set<string>,
): Measure {
  let depth = 0;
  let cost = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      if (name.startsWith('__')) continue;
      const field = isObjectType(type) ? type.getFields()[name] : undefined;
      const ownPage = literalInt(selection, ['limit', 'first']);
      const childPage = ownPage ?? pageSize;
      let child: Measure = { depth: 0, cost: 0 };
      if (selection.selectionSet) {
        child = measure(
          context,
          selection.selectionSet,
          field ? getNamedType(field.type) : undefined,
          childPage,
          fragments,
          visiting,
        );
      }
      const isList = field !== undefined && isListType(getNullableType(field.type));
      const items = isList ? Math.max(1, childPage) : 1;
      depth = Math.max(depth, 1 + child.depth);
      cost += 1 + items * child.cost;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const condition = selection.typeCondition
        ? context.getSchema().getType(selection.typeCondition.name.value)
        : type;
      const inner = measure(
        context,
        selection.selectionSet,
        condition ?? undefined,
        pageSize,
        fragments,
        visiting,
      );
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visiting.has(name)) continue;
      visiting.add(name);
      const condition = context.getSchema().getType(fragment.typeCondition.name.value);
      const inner = measure(
        context,
        fragment.selectionSet,
        condition ?? undefined,
        pageSize,
        fragments,
        visiting,
      );
      visiting.delete(name);
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    }
  }
  return { depth, cost };
}

/** One rule checking both limits of every operation of the document. */
export function operationLimitsRule(limits: { maxDepth: number; maxComplexity: number }): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    return {
      OperationDefinition(node) {
        const schema = context.getSchema();
        const root =
          node.operation === 'query'
            ? schema.getQueryType()
            : node.operation === 'mutation'
              ? schema.getMutationType()
              : schema.getSubscriptionType();
        const { depth, cost } = measure(
          context,
          node.selectionSet,
          root ?? undefined,
          DEFAULT_LIST_SIZE,
          fragments,
          new Set(),
        );
        const name = node.name ? `'${node.name.value}'` : 'the operation';
        if (depth > limits.maxDepth) {
          context.reportError(
            new GraphQLError(`${name} is ${depth} levels deep; at most ${limits.maxDepth} are allowed`, {
              nodes: node,
              extensions: {
                code: 'INVALID_MESSAGE',
                limit: 'graphql_max_depth',
                max: limits.maxDepth,
                actual: depth,
              },
            }),
          );
        }
        if (cost > limits.maxComplexity) {
          context.reportError(
            new GraphQLError(
              `${name} has complexity ${cost}; at most ${limits.maxComplexity} is allowed (lower limit/first or select fewer fields)`,
              {
                nodes: node,
                extensions: {
                  code: 'INVALID_MESSAGE',
                  limit: 'graphql_max_complexity',
                  max: limits.maxComplexity,
                  actual: cost,
                },
              },
            ),
          );
        }
        return false;
      },
    };
  };
}
