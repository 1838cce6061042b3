/**
 * What the paused-client tests share (paused-clients-requests.test.ts, paused-clients-pushed.test.ts): a
 * server of its own per surface, whose RSS (from /proc) is then the server's alone, a client that pauses
 * its socket (stops reading from the kernel) and keeps sending at 90 messages a second, under the default
 * rate limit, as the client of issue 13 did, and the check of what that costs the server. Rows are random
 * text and the clients do not offer compression: what is queued is what goes over the wire.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { HIGH_WATER_MARK } from '../../src/ws/flow-controlled-socket.ts';
import { peakDuring, settleBelow, startServerProcess, type ServerProcess } from './server-process.ts';
import { sleep } from './test-server.ts';
import { TestClient } from './ws-client.ts';

export type { ServerProcess };
export const MB = 1024 * 1024;
/** A row of this size answers every keyed read below. */
export const WIDE_ROW = 512 * 1024;
/** Random text (incompressible) of WIDE_ROW characters. */
export const wideValue = (): string => randomBytes((WIDE_ROW * 3) / 4).toString('base64');
/** The client's request rate: under the default 100 messages a second. */
export const RATE = 90;
export const PAUSED_MS = 8000;
export const MAX_GROWTH = 50 * MB;
/** websocket_max_send_buffer and subscription_max_buffer by default. */
export const DEFAULT_SEND_BUFFER = 16 * MB;
export const DEFAULT_SUBSCRIPTION_BUFFER = 8 * MB;
/** A change of the wide row: the row before and after it. */
export const WIDE_CHANGE = 2 * WIDE_ROW + 4096;

/** Opens `path` (which may have query parameters) with the token in the URL and waits for `auth_success`. */
export async function authed(server: ServerProcess, path = '/api/v1/stream'): Promise<TestClient> {
  const client = await TestClient.connect(
    `${server.wsUrl}${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(server.token)}`,
    {
      perMessageDeflate: false,
    },
  );
  await client.next((m) => m.type === 'auth_success', 10_000);
  return client;
}

/**
 * Sends `message(i)` RATE times a second for `ms`, `burst` at a time: a client whose machine is busy
 * sends what fell due while it waited all at once, and the server reads them in one go.
 */
export async function sendAtRate(
  ws: WebSocket,
  ms: number,
  message: (i: number) => unknown,
  burst = 1,
): Promise<number> {
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < ms && ws.readyState === WebSocket.OPEN) {
    const due = Math.ceil((Math.floor(((Date.now() - started) * RATE) / 1000) + 1) / burst) * burst;
    for (; sent < due; sent++) ws.send(JSON.stringify(message(sent)));
    await sleep(10);
  }
  return sent;
}

/** GET `path` of the server's HTTP API as admin; the answer's `data`. */
export async function adminGet(server: ServerProcess, path: string): Promise<unknown> {
  const res = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${server.token}` },
    signal: AbortSignal.timeout(10_000),
  });
  return ((await res.json()) as { data: unknown }).data;
}

/** The most bytes any session of the server has waiting to be sent now. */
export async function mostQueued(server: ServerProcess): Promise<number> {
  const { sessions } = (await adminGet(server, '/api/v1/sessions')) as {
    sessions: { queued_bytes: number }[];
  };
  return Math.max(0, ...sessions.map((s) => s.queued_bytes));
}

/**
 * Runs `work` (which pauses a client and loads the server) and checks what it costs the server: the
 * bytes queued for any socket stay within `maxQueued`, and RSS within MAX_GROWTH of what it was before,
 * during the work and once `cleanUp` has closed the sockets (V8 keeps collected garbage's pages for a
 * while, so "back to baseline" is within the same margin), with nothing of them left behind.
 */
export async function assertBounded(
  server: ServerProcess,
  maxQueued: number,
  work: () => Promise<void>,
  cleanUp: () => void,
): Promise<void> {
  const baseline = server.rss();
  let queued = 0;
  let working = true;
  const watching = (async () => {
    while (working) {
      queued = Math.max(queued, await mostQueued(server));
      await sleep(200);
    }
  })();
  let peak: number;
  try {
    peak = await peakDuring(() => server.rss(), work);
  } finally {
    working = false;
    await watching;
  }
  cleanUp();
  const settled = await settleBelow(() => server.rss(), baseline + MAX_GROWTH / 2, 10_000);
  assert.ok(
    peak - baseline <= MAX_GROWTH,
    `server RSS grew from ${(baseline / MB).toFixed(0)} MB to ${(peak / MB).toFixed(0)} MB`,
  );
  assert.ok(
    settled - baseline <= MAX_GROWTH,
    `server RSS was ${(settled / MB).toFixed(0)} MB after the sockets closed (${(baseline / MB).toFixed(0)} MB before)`,
  );
  assert.ok(queued <= maxQueued, `${queued} bytes were queued for one socket (at most ${maxQueued} allowed)`);
  // The server learns of the closes asynchronously: once RSS has settled at once, it may not have yet.
  const leftBehind = async (): Promise<unknown[]> => [
    ...((await adminGet(server, '/api/v1/sessions')) as { sessions: unknown[] }).sessions,
    ...((await adminGet(server, '/api/v1/subscriptions')) as { subscriptions: unknown[] }).subscriptions,
  ];
  const deadline = Date.now() + 10_000;
  let left = await leftBehind();
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(200);
    left = await leftBehind();
  }
  assert.deepEqual(left, [], 'sessions or subscriptions left behind after the sockets closed');
}

/** The shortest interval of the metrics surfaces, and the subscriptions /api/v1/metrics/stream allows a socket. */
export const SHORTEST_INTERVAL_MS = 100;
export const METRICS_SUBSCRIPTIONS = 16;
/**
 * What the metrics surfaces may queue for one socket: from HIGH_WATER_MARK on, readings are skipped
 * rather than queued and the client's messages are no longer read, so only what was under way then
 * (a round of readings of about 1 KB each, a few answers) passes it.
 */
export const METRICS_QUEUE_BOUND = HIGH_WATER_MARK + 256 * 1024;
/** Keyed reads of the wide row that fill a paused client's socket, kernel buffers included. */
export const SOCKET_FILLING_QUERIES = 12;
/** Every metric, every SHORTEST_INTERVAL_MS. */
export const METRICS_SUBSCRIPTION = `subscription { systemMetrics(intervalSeconds: ${SHORTEST_INTERVAL_MS / 1000}) { timestamp values { name value } } }`;

/** The GraphQL query of the keyed read above. */
export const WIDE_QUERY = '{ wide(where: { id: { eq: 1 } }) { id v } }';

/** A graphql-ws connection, acknowledged. */
export async function graphqlWs(server: ServerProcess): Promise<WebSocket> {
  const ws = new WebSocket(`${server.wsUrl}/graphql/ws`, 'graphql-transport-ws', {
    perMessageDeflate: false,
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const acknowledged = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve();
    }),
  );
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${server.token}` } }));
  await acknowledged;
  return ws;
}

/**
 * Runs `query` over graphql-ws until it completes or has sent `answers` results: the first GraphQL
 * operation builds the schema, and the baseline includes it.
 */
export function warmGraphQL(query: string, answers = 1) {
  return async (server: ServerProcess): Promise<void> => {
    const ws = await graphqlWs(server);
    let results = 0;
    const answered = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        const { type } = JSON.parse(String(data)) as { type: string };
        if (type === 'complete' || (type === 'next' && ++results >= answers)) resolve();
      }),
    );
    ws.send(JSON.stringify({ id: 'warm', type: 'subscribe', payload: { query } }));
    await answered;
    ws.terminate();
  };
}

/** The rate at which the table subscription surface changes the wide row: one change every 333 ms. */
export const CHANGE_EVERY_MS = 333;

/** Updates wide row `id` over `writer` every CHANGE_EVERY_MS for `ms`; returns how many it sent. */
export async function changeWideRow(writer: TestClient, id: number, ms: number): Promise<number> {
  const started = Date.now();
  let sent = 0;
  for (; Date.now() - started < ms; sent++) {
    writer.send({
      type: 'query',
      id: `u${sent}`,
      payload: { sql: 'UPDATE wide SET v = ? WHERE id = ?', params: [wideValue(), id] },
    });
    await sleep(CHANGE_EVERY_MS);
  }
  return sent;
}

/** Changes of the wide row the warm-up delivers: as many as the paused subscriber takes before it ends. */
export const WARM_CHANGES_MS = 3000;

/**
 * Warms the fan-out of a wide row's changes under the load the test applies: a subscriber that reads
 * (subscribed with `subscription`, over row 2) receives WARM_CHANGES_MS of them. Each 512 KB change
 * leaves a few MB of garbage (the log's row images, their JSON, the frame) and the server's heap and
 * native allocator settle at the size that load needs within a few seconds: with only two changes
 * warmed, that settling (the same with a subscriber that reads as with a paused one) was most of the
 * growth measured, 60 MB under CI load.
 */
export function warmSubscription(subscription: Record<string, unknown>) {
  return async (server: ServerProcess): Promise<void> => {
    const subscriber = await authed(server);
    subscriber.send({ type: 'subscribe', id: 'warm', payload: subscription });
    await subscriber.next((m) => m.type === 'subscribed', 10_000);
    const writer = await authed(server);
    writer.record = false;
    const sent = await changeWideRow(writer, 2, WARM_CHANGES_MS);
    for (let i = 0; i < sent; i++) {
      await subscriber.next((m) => m.type === 'change' && m.id === 'warm', 10_000);
    }
    subscriber.terminate();
    writer.terminate();
  };
}

/**
 * A subscriber (subscribed with `subscription`, over row 1) pauses while the wide row changes 3 times a
 * second: the subscription, not the socket, gives way. It ends with SLOW_CONSUMER, which the client
 * finds once it reads again, after what was already on its way.
 */
export function pausedSubscriber(subscription: Record<string, unknown>) {
  return async (server: ServerProcess) => {
    const subscriber = await authed(server);
    subscriber.record = false;
    subscriber.send({ type: 'subscribe', id: 'wide', payload: subscription });
    await subscriber.next((m) => m.type === 'subscribed', 10_000);
    subscriber.ws.pause();
    const writer = await authed(server);
    writer.record = false;
    await changeWideRow(writer, 1, PAUSED_MS);
    subscriber.ws.resume();
    const ended = await subscriber.next((m) => m.type === 'error', 20_000);
    assert.equal(ended.payload.code, 'SLOW_CONSUMER');
    return [subscriber, writer];
  };
}

/** Wide rows in the table `wide`: the keyed reads below read one, the scans all of them. */
export const WIDE_ROWS = 4;

/** Polls `check` until it holds; fails naming `what` after 20 s. */
export async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** POSTs `body` as admin to the document collections' `path`; resolves once answered. */
export function postDocuments(server: ServerProcess, path: string, body: unknown): Promise<ArrayBuffer> {
  return fetch(`${server.url}/api/v1/documents/collections${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  }).then((res) => res.arrayBuffer());
}

/** Creates the collection `notes` and inserts `count` documents of WIDE_ROW characters into it. */
export async function insertWideDocuments(
  server: ServerProcess,
  count: number,
  create = false,
): Promise<void> {
  if (create) await postDocuments(server, '', { name: 'notes' });
  for (let i = 0; i < count; i++) {
    await postDocuments(server, '/notes/insert', { document: { i, text: wideValue() } });
  }
}

/**
 * The server's environment in these tests: two glibc malloc arenas, as docs/operations.md advises where
 * memory is tight. By default glibc gives each thread that allocates an arena of its own and keeps what
 * is freed there for reuse; libsql runs statements on engine_pool_size + 1 threads, and how many of them
 * a load's statements reach, so how many arenas grow, changes from run to run. 160 inserts of 512 KB
 * documents grew the server by 4–33 MB in 18 runs on this machine, quiet or loaded, up to 26 MB of it
 * free memory in those arenas (`malloc_trim` handed it back), and by 53 MB in one CI run; with two
 * arenas, by 4–8 MB in eight runs. These tests look for what the server keeps of a load (before the
 * statements were reused, those inserts kept 83 MB), which the arenas' free memory would blur.
 */
const SERVER_ENV = { MALLOC_ARENA_MAX: '2' };

/**
 * Starts a server of its own for one surface (so that one test's memory cannot hide or blame
 * another's, with SERVER_ENV), fills `wide`, warms the paths up (a keyed read, a scan, and `warmUp`: the load the test applies,
 * so that the baseline holds what that load's first use allocates, not only the paused client's cost
 * in the growth), then runs `pausedClient`: it opens its client, pauses it and loads the server; the
 * sockets it returns are closed afterwards.
 */
export async function checkSurface(
  pausedClient: (server: ServerProcess) => Promise<{ terminate(): void }[]>,
  maxQueued = DEFAULT_SEND_BUFFER,
  warmUp?: (server: ServerProcess) => Promise<void>,
) {
  const server = await startServerProcess([], { env: SERVER_ENV });
  try {
    await server.sql('CREATE TABLE wide (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    for (let id = 1; id <= WIDE_ROWS; id++) {
      await server.sql('INSERT INTO wide (id, v) VALUES (?, ?)', [id, wideValue()]);
    }
    // Warm up, so that the baseline includes what the first use of each path allocates.
    const warm = await authed(server);
    const { rows } = await warm.query('SELECT id, v FROM wide WHERE id = ?', { params: [1] });
    assert.equal((rows[0]![1] as string).length, WIDE_ROW);
    // And a scan: the first starts the read worker, kept from then on (~10 MB, once per server).
    const scanned = await warm.query("SELECT id, v FROM wide WHERE v <> '' LIMIT 1");
    assert.equal(scanned.rows.length, 1);
    warm.terminate();
    await warmUp?.(server);
    await sleep(500);
    let sockets: { terminate(): void }[] = [];
    await assertBounded(
      server,
      maxQueued,
      async () => {
        sockets = await pausedClient(server);
      },
      () => sockets.forEach((s) => s.terminate()),
    );
  } finally {
    await server.stop();
  }
}

/** A paused `/api/v1/stream` client sending `message(i)` at RATE for PAUSED_MS. */
export function pausedStreamClient(message: (i: number) => unknown) {
  return async (server: ServerProcess) => {
    const client = await authed(server);
    client.record = false;
    client.ws.pause();
    await sendAtRate(client.ws, PAUSED_MS, message);
    return [client];
  };
}

/** Documents inserted before the baseline, and then while it is watched. */
export const WARM_DOCUMENTS = 16;
