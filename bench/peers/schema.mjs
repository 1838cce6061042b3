// The schema both peer servers serve: N items in memory, a mutation that bumps every item's `v` and
// publishes one event per item on that item's own topic, and a subscription to one item's updates.
export const typeDefs = /* GraphQL */ `
  type Item {
    id: Int!
    v: Int!
  }
  type Query {
    item(id: Int!): Item
  }
  type Mutation {
    bumpAll: Int!
  }
  type Subscription {
    itemUpdated(id: Int!): Item!
  }
`;

export function makeItems(n) {
  const items = new Map();
  for (let id = 1; id <= n; id++) items.set(id, { id, v: 0 });
  return items;
}

/** Reads `--port N --items N` style arguments. */
export function args() {
  const out = { port: 0, items: 1000 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = Number(argv[i + 1]);
  return out;
}
