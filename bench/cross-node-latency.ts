/**
 * (m) Commit-to-delivery latency across nodes: three RustyDB nodes on one PostgreSQL database; a writer
 * on node 1 inserts rows at a steady 1,000 changes/s (one autocommit `INSERT` each, pipelined over a
 * few sockets), and subscribers on node 2 and node 3 (other nodes than the writer's) time each change from
 * the moment its `INSERT` was sent to its arrival. That span holds the commit itself, so it bounds
 * commit-to-delivery from above; the span from the writer's acknowledgement to the delivery is reported
 * too (it can be negative: a change may reach a subscriber before its writer hears back). A subscriber on
 * node 1, the writer's own node, is measured in the same run for comparison. Everything on loopback.
 */
import type WebSocket from 'ws';
import { StreamConnection, login } from './lib/client.ts';
import {
  captureReader,
  notMeasured,
  postgresMissing,
  startNodes,
  startTestPostgres,
  stopNodes,
} from './lib/postgres-nodes.ts';
import { cpuSeconds } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import type { RustyServerProcess } from './lib/rusty-server.ts';
import { count, max, ms, percentile, sleep, verdict } from './lib/stats.ts';
import { sharedClock } from './lib/subscriber-pool.ts';

const KEY = 'm';
const TITLE = 'Commit-to-delivery latency on another node than the writer, at 1,000 changes/s';
const RATE = 1000;
const WARMUP_S = 2;
const MEASURE_S = 10;
/** How long the last changes may take to arrive once writing stops. */
const DRAIN_MS = 10_000;
const TABLE = 'latency';
const TARGET_P99_MS = 50;

interface Subscriber {
  node: number;
  /** Receipt time of change n (shared clock, ms). */
  received: Map<number, number>;
  duplicates: number;
  outOfOrder: number;
  close(): Promise<void>;
}

/** Subscribes on node `node` and records each change's arrival by the row's `n`. */
async function subscribe(nodeIndex: number, node: RustyServerProcess, token: string): Promise<Subscriber> {
  const connection = await StreamConnection.open(node.streamUrl, token);
  const reply = await connection.request({ type: 'subscribe', payload: { table: TABLE } });
  if (reply.type !== 'subscribed')
    throw new Error(`subscribe on node ${nodeIndex}: ${JSON.stringify(reply)}`);
  const subscriber: Subscriber = {
    node: nodeIndex,
    received: new Map(),
    duplicates: 0,
    outOfOrder: 0,
    close: () => connection.close(),
  };
  let lastSequence = 0;
  connection.ws.on('message', (data: WebSocket.RawData) => {
    const at = sharedClock();
    const message = JSON.parse((data as Buffer).toString()) as {
      type: string;
      payload: { sequence?: number; row?: { n?: number } };
    };
    if (message.type !== 'change' || typeof message.payload.row?.n !== 'number') return;
    const n = message.payload.row.n;
    if (subscriber.received.has(n)) subscriber.duplicates++;
    else subscriber.received.set(n, at);
    if ((message.payload.sequence ?? 0) <= lastSequence) subscriber.outOfOrder++;
    lastSequence = message.payload.sequence ?? lastSequence;
  });
  return subscriber;
}

/** Requests one connection may have running at once (the server's limit). */
const IN_FLIGHT_PER_SOCKET = 16;
/** Writer sockets the INSERTs are spread over, so that a slow moment never hits the limit above. */
const WRITER_SOCKETS = 8;

/**
 * Sends `INSERT`s at RATE per second for `seconds`, numbered from `first`, each on the writer socket with
 * the fewest running (never more than the server allows); records the send and acknowledgement times of
 * each. A send with every socket full waits for the next tick: the achieved rate then falls short, and
 * says so. Resolves once every acknowledgement has arrived.
 */
async function writeAtRate(
  sockets: readonly WebSocket[],
  first: number,
  seconds: number,
  sent: Map<number, number>,
  acked: Map<number, number>,
): Promise<{ failures: number; sample?: string }> {
  const total = RATE * seconds;
  let failures = 0;
  let sample: string | undefined;
  const running = sockets.map(() => 0);
  let allAcked: (() => void) | undefined;
  const listeners = sockets.map((ws, index) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const message = JSON.parse((data as Buffer).toString()) as { type: string; id?: string };
      if (!message.id?.startsWith('w')) return;
      const n = Number(message.id.slice(1));
      if (message.type === 'data') acked.set(n, sharedClock());
      else if (message.type === 'error') {
        failures++;
        sample ??= JSON.stringify(message).slice(0, 300);
      } else return;
      running[index]!--;
      if (allAcked && running.every((r) => r === 0)) allAcked();
    };
    ws.on('message', onMessage);
    return onMessage;
  });
  const start = performance.now();
  let next = 0;
  while (next < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * RATE) / 1000) + 1);
    for (; next < due; next++) {
      const index = running.indexOf(Math.min(...running));
      if (running[index]! >= IN_FLIGHT_PER_SOCKET) break;
      const n = first + next;
      running[index]!++;
      sent.set(n, sharedClock());
      sockets[index]!.send(
        JSON.stringify({
          type: 'query',
          id: `w${n}`,
          payload: { sql: `INSERT INTO ${TABLE} (n) VALUES (?)`, params: [n] },
        }),
      );
    }
    await sleep(1);
  }
  if (running.some((r) => r > 0)) await new Promise<void>((resolve) => (allAcked = resolve));
  sockets.forEach((ws, index) => ws.off('message', listeners[index]!));
  return { failures, ...(sample !== undefined ? { sample } : {}) };
}

export async function runCrossNodeLatency(ctx: BenchContext): Promise<BenchReport> {
  const missing = postgresMissing();
  if (missing) return notMeasured(KEY, TITLE, missing);
  const postgres = await startTestPostgres();
  let nodes: RustyServerProcess[] = [];
  try {
    nodes = await startNodes(ctx, postgres, 'latency', 3);
    ctx.log(`  (${KEY}) PostgreSQL pid ${postgres.pid}; nodes ${nodes.map((n) => n.pid).join(', ')}`);
    const token = await login(nodes[0]!.url);
    const writers: StreamConnection[] = [];
    for (let i = 0; i < WRITER_SOCKETS; i++)
      writers.push(await StreamConnection.open(nodes[0]!.streamUrl, token));
    await writers[0]!.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, n integer NOT NULL)`);
    const writerSockets = writers.map((w) => w.ws);
    const subscribers = [
      await subscribe(2, nodes[1]!, token),
      await subscribe(3, nodes[2]!, token),
      await subscribe(1, nodes[0]!, token),
    ];
    const sent = new Map<number, number>();
    const acked = new Map<number, number>();
    ctx.log(`  (${KEY}) ${WARMUP_S} s warm-up, then ${MEASURE_S} s at ${RATE} changes/s`);
    const warmUp = await writeAtRate(writerSockets, 0, WARMUP_S, sent, acked);
    const first = RATE * WARMUP_S;
    const cpuBefore = nodes.map((node) => cpuSeconds(node.pid));
    const started = performance.now();
    const measured = await writeAtRate(writerSockets, first, MEASURE_S, sent, acked);
    const writeSeconds = (performance.now() - started) / 1000;
    const busy = nodes.map((node, i) => (cpuSeconds(node.pid) - cpuBefore[i]!) / writeSeconds);
    const last = first + RATE * MEASURE_S - 1;
    const deadline = performance.now() + DRAIN_MS;
    while (subscribers.some((s) => !s.received.has(last)) && performance.now() < deadline) await sleep(20);
    await sleep(200); // anything late or duplicated
    for (const s of subscribers) await s.close();
    for (const writer of writers) await writer.close();
    if (warmUp.failures + measured.failures > 0) {
      throw new Error(
        `${warmUp.failures + measured.failures} INSERTs failed, e.g. ${warmUp.sample ?? measured.sample}`,
      );
    }

    const measure = (s: Subscriber) => {
      const fromSend: number[] = [];
      const fromAck: number[] = [];
      let missingChanges = 0;
      for (let n = first; n <= last; n++) {
        const at = s.received.get(n);
        if (at === undefined) {
          missingChanges++;
          continue;
        }
        fromSend.push(at - sent.get(n)!);
        fromAck.push(at - acked.get(n)!);
      }
      return {
        node: s.node,
        p50: percentile(fromSend, 50),
        p99: percentile(fromSend, 99),
        worst: max(fromSend),
        ackP50: percentile(fromAck, 50),
        ackP99: percentile(fromAck, 99),
        missing: missingChanges,
        duplicates: s.duplicates,
        outOfOrder: s.outOfOrder,
      };
    };
    const results = subscribers.map(measure);
    const other = results.filter((r) => r.node !== 1);
    const worstP99 = max(other.map((r) => r.p99));
    const clean = results.every((r) => r.missing === 0 && r.duplicates === 0 && r.outOfOrder === 0);
    const met = clean && worstP99 <= TARGET_P99_MS;
    const ackP50 = percentile(
      [...acked.entries()].filter(([n]) => n >= first).map(([n, at]) => at - sent.get(n)!),
      50,
    );
    const achieved = (RATE * MEASURE_S) / writeSeconds;
    const reader = captureReader(nodes);
    const markdown = [
      `Three nodes on one database of a throwaway PostgreSQL (loopback). The writer on node 1 sends one ` +
        `autocommit \`INSERT\` per change, paced at ${count(RATE)}/s and pipelined over ${WRITER_SOCKETS} sockets ` +
        `(${count(achieved)}/s achieved, all acknowledged; the writer's own send → acknowledgement median ` +
        `${ms(ackP50)}); ${WARMUP_S} s of warm-up, then ${count(RATE * MEASURE_S)} measured changes. Each ` +
        `subscriber checks that it got every change once and in sequence order. The capture slot was read by ` +
        `${reader === undefined ? 'a node that did not say so in its log' : `node ${reader}`}. While writing, ` +
        `the nodes used ${busy.map((b, i) => `${(b * 100).toFixed(0)}% (node ${i + 1})`).join(', ')} of a core.`,
      '',
      table(
        [
          'subscriber',
          'send → delivery p50',
          'p99',
          'worst',
          'ack → delivery p50',
          'p99',
          'missing',
          'duplicates',
          'out of order',
        ],
        results.map((r) => [
          r.node === 1 ? 'node 1 (the writer’s, for comparison)' : `node ${r.node}`,
          ms(r.p50),
          ms(r.p99),
          ms(r.worst),
          ms(r.ackP50),
          ms(r.ackP99),
          count(r.missing),
          count(r.duplicates),
          count(r.outOfOrder),
        ]),
      ),
      '',
      `**p99 on another node than the writer: ${ms(worstP99)}** (the worse of nodes 2 and 3; target ≤ ` +
        `${TARGET_P99_MS} ms: ${verdict(met)}).` +
        (clean ? '' : ' **A subscriber missed, repeated or reordered changes.**'),
      '',
      'Every change takes the same path whichever node the subscriber is on: PostgreSQL decodes the commit ' +
        'from its WAL and streams it to the node that holds the capture slot, which numbers it into the ' +
        'change log and NOTIFYs; every node then reads the new entries and sends them to its subscribers. ' +
        "So node 1's figures differ from the others' only by scheduling.",
    ].join('\n');
    return {
      key: KEY,
      title: TITLE,
      markdown,
      targets: [
        {
          name: `p99 send → delivery on another node ≤ ${TARGET_P99_MS} ms at ${count(RATE)} changes/s`,
          measured: `${ms(worstP99)} (p50 ${ms(max(other.map((r) => r.p50)))})`,
          met,
        },
      ],
    };
  } finally {
    await stopNodes(nodes);
    postgres.stop();
  }
}
