/**
 * Subscription events without a graphql-js execution each. graphql-js's `subscribe` runs the whole
 * operation again for every event (execution context, field collection, resolver and completion per
 * field); with a thousand subscribers that was most of the server's work per change. Here an event's
 * selection is read once, when the subscription starts, into a plan — the root field's response key and
 * the leaf fields selected under it — and each event is completed by that plan: the same resolvers
 * (the field's event shape, then plain property reads), the same scalar serialization, the same key
 * order, so the result is the one graphql-js would build.
 *
 * Only what the plan can complete exactly is planned: a root field marked with an event shape (ours,
 * see EVENT_SHAPE), an object type without `isTypeOf`, leaf fields (scalars, enums, `__typename`)
 * without arguments or directives, reached directly or through fragments on that very type. Anything
 * else — and any event the plan meets that would end in an error (a null where the type forbids it, a
 * value a scalar refuses) — is executed by graphql-js as before, so errors read exactly as they did.
 */
import {
  createSourceEventStream,
  execute,
  getNamedType,
  getNullableType,
  getOperationAST,
  isLeafType,
  isNonNullType,
  isObjectType,
  Kind,
  type ExecutionArgs,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type GraphQLLeafType,
  type GraphQLObjectType,
  type SelectionSetNode,
} from 'graphql';
import { DerivedSlot } from '../core/derived-slot.ts';
import type { GraphQLContext } from './context.ts';
import { PushIterator } from './push-iterator.ts';

/**
 * The field extension that marks a subscription field whose resolver is `shape(event)` and nothing
 * else: a pure function of the event, which a plan may call directly.
 */
export const EVENT_SHAPE = 'rustydbEventShape';

type Shape = (event: unknown) => unknown;

interface LeafPlan {
  key: string;
  /** The field read from the shaped event; undefined for `__typename`. */
  field: string | undefined;
  type: GraphQLLeafType;
  nonNull: boolean;
}

/** A subscription's events, completed without graphql-js. */
interface EventPlan {
  /** The result of one event, or undefined to let graphql-js execute it. */
  complete(event: unknown): ExecutionResult | undefined;
  /** The selection, as text: operations with the same one complete an event the same way. */
  signature: string;
}

/**
 * Results already serialized, by event and plan signature: subscribers that receive the same event
 * object through the same selection share one JSON text, as UTF-8 bytes, whoever they are (what reaches
 * whom has been decided and authorized before: the bytes depend on the event and the selection only).
 */
const serialized = new DerivedSlot<object, Serialized>('serialized event');

/** An event's payload bytes by selection: one selection (the usual case) without a Map. */
type Serialized = { signature: string; bytes: Buffer } | Map<string, Buffer>;

/**
 * The payload JSON of an event's result as UTF-8 bytes, serialized once per (event, selection);
 * undefined as `complete`. Shared: never to be changed.
 */
export function payloadBytes(plan: EventPlan, event: unknown): Buffer | undefined {
  const shareable = typeof event === 'object' && event !== null;
  const known = shareable ? serialized.get(event) : undefined;
  if (known !== undefined) {
    const bytes =
      known instanceof Map
        ? known.get(plan.signature)
        : known.signature === plan.signature
          ? known.bytes
          : undefined;
    if (bytes !== undefined) return bytes;
  }
  const result = plan.complete(event);
  if (!result) return undefined;
  const bytes = Buffer.from(JSON.stringify(result));
  if (shareable) {
    if (known === undefined) serialized.set(event, { signature: plan.signature, bytes });
    else if (known instanceof Map) known.set(plan.signature, bytes);
    else
      serialized.set(
        event,
        new Map([
          [known.signature, known.bytes],
          [plan.signature, bytes],
        ]),
      );
  }
  return bytes;
}

/** Gathers the leaf fields of a selection set on `type`, in graphql-js's order; false when not plannable. */
function collectLeaves(
  type: GraphQLObjectType,
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  leaves: Map<string, LeafPlan>,
  visited: Set<string>,
): boolean {
  const fields = type.getFields();
  for (const selection of selectionSet.selections) {
    if (selection.directives && selection.directives.length > 0) return false;
    if (selection.kind === Kind.FIELD) {
      if (selection.selectionSet || (selection.arguments && selection.arguments.length > 0)) return false;
      const name = selection.name.value;
      const key = selection.alias?.value ?? name;
      // A response key seen before names the same field (validation makes sure): it keeps its place.
      if (leaves.has(key)) continue;
      if (name === '__typename') {
        leaves.set(key, { key, field: undefined, type: type as never, nonNull: true });
        continue;
      }
      const definition = fields[name];
      if (!definition || definition.resolve) return false;
      const fieldType = getNullableType(definition.type);
      if (!isLeafType(fieldType)) return false;
      leaves.set(key, { key, field: name, type: fieldType, nonNull: isNonNullType(definition.type) });
      continue;
    }
    const fragment =
      selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments.get(selection.name.value);
    if (!fragment) return false;
    if (selection.kind === Kind.FRAGMENT_SPREAD) {
      // graphql-js collects a named fragment once per selection set.
      if (visited.has(selection.name.value)) continue;
      visited.add(selection.name.value);
    }
    if (fragment.typeCondition && fragment.typeCondition.name.value !== type.name) return false;
    if (!collectLeaves(type, fragment.selectionSet, fragments, leaves, visited)) return false;
  }
  return true;
}

/** The plan of a subscription operation, or undefined when graphql-js must execute its events. */
export function planEvents(args: ExecutionArgs): EventPlan | undefined {
  const operation = getOperationAST(args.document, args.operationName);
  const root = args.schema.getSubscriptionType();
  if (!operation || operation.operation !== 'subscription' || !root) return undefined;
  const [selection, ...more] = operation.selectionSet.selections;
  if (!selection || more.length > 0 || selection.kind !== Kind.FIELD) return undefined;
  if ((selection.directives?.length ?? 0) > 0 || !selection.selectionSet) return undefined;
  const definition = root.getFields()[selection.name.value];
  const shape = definition?.extensions?.[EVENT_SHAPE] as Shape | undefined;
  if (!definition || typeof shape !== 'function') return undefined;
  const type = getNullableType(definition.type);
  if (!isObjectType(type) || type.isTypeOf || getNamedType(type) !== type) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const node of args.document.definitions) {
    if (node.kind === Kind.FRAGMENT_DEFINITION) fragments.set(node.name.value, node);
  }
  const collected = new Map<string, LeafPlan>();
  if (!collectLeaves(type, selection.selectionSet, fragments, collected, new Set())) return undefined;
  const leaves = [...collected.values()];
  const rootKey = selection.alias?.value ?? selection.name.value;
  const rootNonNull = isNonNullType(definition.type);
  const signature = JSON.stringify([
    selection.name.value,
    rootKey,
    leaves.map((leaf) => [leaf.key, leaf.field ?? null]),
  ]);

  const complete = (event: unknown): ExecutionResult | undefined => {
    const shaped = shape(event) as Record<string, unknown> | null | undefined;
    if (shaped === null || shaped === undefined) {
      return rootNonNull ? undefined : { data: { [rootKey]: null } };
    }
    if (typeof shaped !== 'object' || typeof (shaped as { then?: unknown }).then === 'function') {
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const leaf of leaves) {
      if (leaf.field === undefined) {
        out[leaf.key] = type.name;
        continue;
      }
      const value = shaped[leaf.field];
      if (value === null || value === undefined) {
        if (leaf.nonNull) return undefined;
        out[leaf.key] = null;
        continue;
      }
      // A method or a promise is resolved differently by graphql-js: leave it to graphql-js.
      if (typeof value === 'function' || typeof (value as { then?: unknown }).then === 'function') {
        return undefined;
      }
      let serialized: unknown;
      try {
        serialized = leaf.type.serialize(value);
      } catch {
        return undefined;
      }
      if (serialized === null || serialized === undefined) return undefined;
      out[leaf.key] = serialized;
    }
    return { data: { [rootKey]: out } };
  };
  return { complete, signature };
}

/**
 * graphql-js's `subscribe`, with each event completed by its plan when the operation has one (else
 * executed as graphql-js does: the operation run with the event as root value). Over graphql-ws the
 * planned events of our own subscriptions go straight to the socket as they arrive (`sendNext`), once
 * graphql-ws is reading the operation and has sent everything it read before.
 */
export async function subscribeWithPlans(
  args: ExecutionArgs,
): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
  const plan = planEvents(args);
  const sendNext = (args.contextValue as GraphQLContext | undefined)?.sendNext;
  if (plan && sendNext && stream instanceof PushIterator) {
    stream.divert((event) => {
      const bytes = payloadBytes(plan, event);
      if (bytes === undefined) return false;
      sendNext(bytes);
      return true;
    });
  }
  const toResult = (event: unknown): ExecutionResult | Promise<ExecutionResult> =>
    plan?.complete(event) ?? execute({ ...args, rootValue: event });
  return mapEvents(stream[Symbol.asyncIterator](), toResult);
}

/**
 * The events of `source` turned into results. Not an async generator: a generator's `return()` waits
 * for the pull under way, while the source's `return()` must release the subscription at once.
 */
function mapEvents(
  source: AsyncIterator<unknown>,
  toResult: (event: unknown) => ExecutionResult | Promise<ExecutionResult>,
): AsyncIterableIterator<ExecutionResult> {
  const close = async (): Promise<void> => {
    try {
      await source.return?.();
    } catch {
      // The error that ended the events is the one to report.
    }
  };
  const map = async (next: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> => {
    if (next.done) return { value: undefined, done: true };
    try {
      return { value: await toResult(next.value), done: false };
    } catch (err) {
      await close();
      throw err;
    }
  };
  const results: AsyncIterableIterator<ExecutionResult> = {
    next: async () => map(await source.next()),
    return: async () => {
      if (source.return) await source.return();
      return { value: undefined, done: true };
    },
    throw: async (err: unknown) => {
      await close();
      throw err;
    },
    [Symbol.asyncIterator]: () => results,
  };
  return results;
}
