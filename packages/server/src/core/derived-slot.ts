/**
 * A value derived from an object, kept on the object itself under a symbol of its own. For objects made
 * by the thousand on every change and dropped soon after (change records, their payloads, events) this
 * is much cheaper than a WeakMap: each WeakMap entry is an ephemeron that the garbage collector has to
 * track and revisit, about a microsecond per entry over its life here, against a few dozen nanoseconds
 * for a property. The entry names its owner, so a copy of the object (a spread copies symbol-keyed
 * properties) never answers with its original's value. Objects that cannot take a property (frozen,
 * sealed) simply keep nothing.
 */
interface Entry<V> {
  owner: object;
  value: V;
}

export class DerivedSlot<O extends object, V> {
  readonly #key: symbol;

  /** @param description names the symbol, for a debugger's view of the objects */
  constructor(description: string) {
    this.#key = Symbol(description);
  }

  get(owner: O): V | undefined {
    const entry = (owner as Record<symbol, Entry<V> | undefined>)[this.#key];
    return entry !== undefined && entry.owner === owner ? entry.value : undefined;
  }

  set(owner: O, value: V): void {
    if (!Object.isExtensible(owner) && !Object.prototype.hasOwnProperty.call(owner, this.#key)) return;
    (owner as Record<symbol, Entry<V>>)[this.#key] = { owner, value };
  }
}
