// mercurius on fastify with its own PubSub (mqemitter, a topic per item id), subscriptions over the
// graphql-transport-ws subprotocol.
import Fastify from 'fastify';
import mercurius from 'mercurius';
import { args, makeItems, typeDefs } from './schema.mjs';

const { port, items: count } = args();
const items = makeItems(count);

const app = Fastify({ logger: false });
app.register(mercurius, {
  schema: typeDefs,
  resolvers: {
    Query: { item: (_, { id }) => items.get(id) ?? null },
    Mutation: {
      bumpAll: async (_, __, { pubsub }) => {
        await Promise.all(
          [...items.values()].map((item) => {
            item.v++;
            return pubsub.publish({ topic: `ITEM_${item.id}`, payload: { itemUpdated: { ...item } } });
          }),
        );
        return items.size;
      },
    },
    Subscription: {
      itemUpdated: { subscribe: async (_, { id }, { pubsub }) => pubsub.subscribe(`ITEM_${id}`) },
    },
  },
  subscription: true,
  graphiql: false,
});
await app.listen({ port, host: '127.0.0.1' });
console.log(`mercurius listening on http://127.0.0.1:${app.server.address().port}/graphql`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
