// graphql-yoga with its own PubSub (createPubSub, a topic per item id), subscriptions over graphql-ws
// on a `ws` server, as yoga's documentation sets it up.
import { createServer } from 'node:http';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { args, makeItems, typeDefs } from './schema.mjs';

const { port, items: count } = args();
const items = makeItems(count);
const pubsub = createPubSub();

const schema = createSchema({
  typeDefs,
  resolvers: {
    Query: { item: (_, { id }) => items.get(id) ?? null },
    Mutation: {
      bumpAll: () => {
        for (const item of items.values()) {
          item.v++;
          pubsub.publish('itemUpdated', item.id, { ...item });
        }
        return items.size;
      },
    },
    Subscription: {
      itemUpdated: {
        subscribe: (_, { id }) => pubsub.subscribe('itemUpdated', id),
        resolve: (payload) => payload,
      },
    },
  },
});

const yoga = createYoga({ schema, graphiql: false, logging: false, maskedErrors: true });
const server = createServer(yoga);
const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
useServer(
  {
    execute: (args) => args.rootValue.execute(args),
    subscribe: (args) => args.rootValue.subscribe(args),
    onSubscribe: async (ctx, id, params) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params,
      });
      const args = {
        schema,
        operationName: params.operationName,
        document: parse(params.query),
        variableValues: params.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      };
      const errors = validate(args.schema, args.document);
      if (errors.length) return errors;
      return args;
    },
  },
  wss,
  0,
);
server.listen(port, '127.0.0.1', () => {
  console.log(`yoga listening on http://127.0.0.1:${server.address().port}${yoga.graphqlEndpoint}`);
});
process.on('SIGTERM', () => process.exit(0));
