/**
 * Which table subscriptions a batch of change records may concern, found by lookup instead of by
 * offering every record to every subscription. Subscriptions are indexed by table and, when their row
 * filter pins a column to one or more values (`{id: 5}`, `{id: {eq: 5}}`, `{id: {in: [1, 2]}}`), by
 * those values: a record reaches such a subscription only if the column's value before or after the
 * change is one of them. With a thousand subscribers each watching its own row, a thousand-row update
 * is then a thousand lookups rather than a million filter checks.
 *
 * The lookup may over-select (the subscription's own filter still decides), never under-select: two
 * values the row filter holds equal (row-filter.ts `same`) always get the same index key. Schema
 * records (`ddl`) reach every subscription of their table.
 */
import type { FilterCondition, RowFilter } from '@rustydb/protocol';
import type { ChangeRecord } from '../engine/engine.ts';

/** The column a subscription's filter pins, and the values it pins it to. */
export interface RouteKey {
  column: string;
  values: readonly unknown[];
}

/** What the router needs of a subscription. */
export interface Routable {
  readonly table: string;
  readonly route: RouteKey | undefined;
}

/**
 * The index key of a value; equal under the row filter's comparison implies equal keys. Booleans count
 * as 1 and 0 (the filter compares `true` with the stored 1), objects ({$base64}) by their JSON.
 */
export function routeKeyOf(value: unknown): string | undefined {
  switch (typeof value) {
    case 'undefined':
      return undefined;
    case 'number':
    case 'bigint':
      return `n${value}`;
    case 'boolean':
      return value ? 'n1' : 'n0';
    case 'string':
      return `s${value}`;
    default:
      return value === null ? 'null' : `j${JSON.stringify(value)}`;
  }
}

/** The values a condition requires the column to equal, if it requires equality at all. */
function pinnedValues(condition: FilterCondition): readonly unknown[] | undefined {
  if (condition === null || typeof condition !== 'object' || '$base64' in condition) return [condition];
  if (condition.eq !== undefined) return [condition.eq];
  if (condition.in !== undefined) return condition.in;
  return undefined;
}

/** The first column a filter pins to values, or undefined when no condition is an equality. */
export function routeKeyOfFilter(filter: RowFilter | undefined): RouteKey | undefined {
  for (const [column, condition] of Object.entries(filter ?? {})) {
    const values = pinnedValues(condition);
    if (values) return { column, values };
  }
  return undefined;
}

/** One table's subscriptions. */
interface TableRoutes<S> {
  all: Set<S>;
  /** Subscriptions that see every change of the table (no pinned column). */
  unpinned: Set<S>;
  /** column → value key → subscriptions pinning the column to that value. */
  pinned: Map<string, Map<string, Set<S>>>;
}

export class SubscriptionRouter<S extends Routable> {
  readonly #tables = new Map<string, TableRoutes<S>>();

  add(subscription: S): void {
    let routes = this.#tables.get(subscription.table);
    if (!routes) {
      routes = { all: new Set(), unpinned: new Set(), pinned: new Map() };
      this.#tables.set(subscription.table, routes);
    }
    routes.all.add(subscription);
    const route = subscription.route;
    if (!route) {
      routes.unpinned.add(subscription);
      return;
    }
    let byValue = routes.pinned.get(route.column);
    if (!byValue) routes.pinned.set(route.column, (byValue = new Map()));
    for (const value of route.values) {
      const key = routeKeyOf(value)!;
      let subscribers = byValue.get(key);
      if (!subscribers) byValue.set(key, (subscribers = new Set()));
      subscribers.add(subscription);
    }
  }

  delete(subscription: S): void {
    const routes = this.#tables.get(subscription.table);
    if (!routes?.all.delete(subscription)) return;
    routes.unpinned.delete(subscription);
    const route = subscription.route;
    const byValue = route ? routes.pinned.get(route.column) : undefined;
    if (route && byValue) {
      for (const value of route.values) {
        const key = routeKeyOf(value)!;
        const subscribers = byValue.get(key);
        subscribers?.delete(subscription);
        if (subscribers?.size === 0) byValue.delete(key);
      }
      if (byValue.size === 0) routes.pinned.delete(route.column);
    }
    if (routes.all.size === 0) this.#tables.delete(subscription.table);
  }

  clear(): void {
    this.#tables.clear();
  }

  /**
   * The records each subscription may be concerned by, in log order, for those `accept` lets through.
   * Subscriptions that see every change of their table share one list per table (a change fanned out to
   * thousands of them builds no list per subscription).
   */
  route(records: readonly ChangeRecord[], accept: (subscription: S) => boolean): RoutedRecords<S> {
    const pinned = new Map<S, ChangeRecord[]>();
    const byTable = new Map<string, ChangeRecord[]>();
    const give = (subscription: S, record: ChangeRecord): void => {
      if (!accept(subscription)) return;
      const list = pinned.get(subscription);
      if (!list) pinned.set(subscription, [record]);
      // A subscription pinned to both the old and the new value is found twice: it gets the record once.
      else if (list[list.length - 1] !== record) list.push(record);
    };
    for (const record of records) {
      const routes = this.#tables.get(record.table);
      if (!routes) continue;
      const ofTable = byTable.get(record.table);
      if (ofTable) ofTable.push(record);
      else byTable.set(record.table, [record]);
      if (record.op === 'ddl') {
        for (const subscription of routes.all) if (subscription.route) give(subscription, record);
        continue;
      }
      for (const [column, byValue] of routes.pinned) {
        const before = record.old ? routeKeyOf(record.old[column]) : undefined;
        const after = record.new ? routeKeyOf(record.new[column]) : undefined;
        if (before !== undefined) for (const s of byValue.get(before) ?? []) give(s, record);
        if (after !== undefined && after !== before)
          for (const s of byValue.get(after) ?? []) give(s, record);
      }
    }
    return new RoutedRecords(pinned, byTable, accept);
  }
}

const NO_RECORDS: readonly ChangeRecord[] = [];

/** What `SubscriptionRouter.route` found: the records of a batch each subscription is to be offered. */
export class RoutedRecords<S extends Routable> {
  readonly #pinned: Map<S, ChangeRecord[]>;
  readonly #byTable: Map<string, ChangeRecord[]>;
  readonly #accept: (subscription: S) => boolean;

  constructor(
    pinned: Map<S, ChangeRecord[]>,
    byTable: Map<string, ChangeRecord[]>,
    accept: (subscription: S) => boolean,
  ) {
    this.#pinned = pinned;
    this.#byTable = byTable;
    this.#accept = accept;
  }

  /** The records that may concern `subscription`, in log order (none when `accept` refused it). */
  of(subscription: S): readonly ChangeRecord[] {
    if (subscription.route) return this.#pinned.get(subscription) ?? NO_RECORDS;
    if (!this.#accept(subscription)) return NO_RECORDS;
    return this.#byTable.get(subscription.table) ?? NO_RECORDS;
  }
}
