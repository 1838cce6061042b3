// The floor: no GraphQL library at all. A bare `ws` server that speaks just enough of the graphql-ws
// protocol (connection_init → connection_ack, subscribe, complete) for the same client, and on
// `bumpAll` bumps N in-memory items and sends each subscriber of an item its `next` message with one
// JSON.stringify and one ws.send. What it costs per event is what any server pays on this machine to
// hand an event to a socket; its events/s bound what any server can reach with these clients.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { args, makeItems } from './schema.mjs';

const { port, items: count } = args();
const items = makeItems(count);
/** item id → [socket, operation id] of its subscribers */
const subscribers = new Map();

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    for (const item of items.values()) {
      item.v++;
      for (const [socket, id] of subscribers.get(item.id) ?? []) {
        socket.send(JSON.stringify({ id, type: 'next', payload: { data: { itemUpdated: { ...item } } } }));
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: { bumpAll: items.size } }));
  });
});
const wss = new WebSocketServer({ server, path: '/graphql' });
wss.on('connection', (socket) => {
  const mine = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.type === 'connection_init') socket.send(JSON.stringify({ type: 'connection_ack' }));
    else if (message.type === 'ping') socket.send(JSON.stringify({ type: 'pong' }));
    else if (message.type === 'subscribe') {
      const itemId = message.payload.variables.id;
      const entry = [socket, message.id];
      if (!subscribers.has(itemId)) subscribers.set(itemId, []);
      subscribers.get(itemId).push(entry);
      mine.push([itemId, entry]);
    }
  });
  socket.on('close', () => {
    for (const [itemId, entry] of mine) {
      const list = subscribers.get(itemId) ?? [];
      list.splice(list.indexOf(entry), 1);
    }
  });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`raw ws listening on http://127.0.0.1:${server.address().port}/graphql`);
});
process.on('SIGTERM', () => process.exit(0));
