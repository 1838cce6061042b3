/**
 * (m) Commit-to-delivery latency across nodes: three RustyDB nodes on one PostgreSQL database; a writer
 * on node 1 inserts rows at a steady 1,000 changes/s (one autocommit `INSERT` each, pipelined over a
 * few sockets), and subscribers on node 2 and node 3 (other nodes than the writer's) time each change
 * from its commit to its arrival. The commit time is PostgreSQL's own (the commit record's timestamp,
 * which the change carries as `timestamp`, to the millisecond), read against the subscriber's wall
 * clock: the same clock on one machine. The span from the writer's send to the delivery is reported too:
 * it adds the writer's own request (queueing on node 1, the INSERT and its commit), which is not part of
 * commit-to-delivery. A subscriber on node 1, the writer's own node, is measured for comparison.
 * The measurement is repeated, alternately on the machine as found and with a competing process keeping
 * half of one core busy, so the figure is shown on a moderately busy machine too. Everything on loopback.
 */
import { availableParallelism, loadavg } from 'node:os';
import type WebSocket from 'ws';
import { StreamConnection, login } from './lib/client.ts';
import { startCpuBurner } from './lib/cpu-burner.ts';
import {
  captureReader,
  dropDatabases,
  notMeasured,
  postgresMissing,
  startNodes,
  sharedPostgres,
  stopNodes,
} from './lib/postgres-nodes.ts';
import { cpuSeconds, machineCpu, treeCpuSeconds } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import type { RustyServerProcess } from './lib/rusty-server.ts';
import { count, max, median, ms, percentile, sleep, verdict } from './lib/stats.ts';
import { sharedClock } from './lib/subscriber-pool.ts';

const KEY = 'm';

const TITLE = 'Commit-to-delivery latency on another node than the writer, at 1,000 changes/s';
const RATE = 1000;
/** A repetition counts as run at RATE when it achieved this share of it. */
const RATE_SHARE_REQUIRED = 0.95;
const WARMUP_S = 2;
/** Measured repetitions, taking turns: the machine as found, then with the competing process. */
const REPEATS = 3;
/**
 * 3,000 changes per repetition: its p99 is still the 30th-worst delivery on each node. Repetitions of
 * 5 s made the section ~26 s of the bench's 6 minutes on the 2-core AMD host; 3 s saves 6 s of it.
 */
const REPEAT_S = 3;
/** The competing process's share of one core, in the loaded repetitions. */
const COMPETING_DUTY = 0.5;
/** How long the last changes may take to arrive once writing stops. */
const DRAIN_MS = 10_000;
const TABLE = 'latency';
/** This benchmark's database on the run's shared PostgreSQL server. */
const DATABASE = 'latency';
const TARGET_P99_MS = 50;

interface Receipt {
  /** Arrival, shared clock (ms). */
  at: number;
  /** PostgreSQL's commit time of the change, ms since the epoch (from the change's `timestamp`). */
  committedAt: number;
}

interface Subscriber {
  node: number;
  /** Change n → its receipt. */
  received: Map<number, Receipt>;
  duplicates: number;
  outOfOrder: number;
  close(): Promise<void>;
}

/**
 * How far the wall clock (PostgreSQL's commit timestamps) is ahead of the shared clock the receipts are
 * stamped with: the median of a few readings, so a commit time and an arrival can be compared.
 */
function wallOffset(): number {
  const readings = Array.from({ length: 21 }, () => Date.now() - sharedClock());
  return median(readings);
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
      payload: { sequence?: number; timestamp?: string; row?: { n?: number } };
    };
    if (message.type !== 'change' || typeof message.payload.row?.n !== 'number') return;
    const n = message.payload.row.n;
    if (subscriber.received.has(n)) subscriber.duplicates++;
    else subscriber.received.set(n, { at, committedAt: Date.parse(message.payload.timestamp ?? '') });
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

/** One measured repetition: which changes, and what the machine was doing meanwhile. */
interface Repetition {
  index: number;
  loaded: boolean;
  first: number;
  last: number;
  achieved: number;
  /** Share of the machine's cores busy (everything on it, this bench included). */
  machineBusy: number;
  load: number;
  /** Each node's share of one core. */
  nodeBusy: number[];
  /** PostgreSQL's (every backend, the walsender) share of one core. */
  postgresBusy: number;
}

export async function runCrossNodeLatency(ctx: BenchContext): Promise<BenchReport> {
  const missing = postgresMissing();
  if (missing) return notMeasured(KEY, TITLE, missing);
  const postgres = await sharedPostgres();
  let nodes: RustyServerProcess[] = [];
  try {
    nodes = await startNodes(ctx, postgres, DATABASE, 3);
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
    const offset = wallOffset();
    const sent = new Map<number, number>();
    const acked = new Map<number, number>();
    const cores = availableParallelism();
    ctx.log(
      `  (${KEY}) ${WARMUP_S} s warm-up, then ${REPEATS} × ${REPEAT_S} s at ${RATE} changes/s (every other one ` +
        `with a competing process busy ${COMPETING_DUTY * 100}% of a core)`,
    );
    let failures = 0;
    let sample: string | undefined;
    const note = (result: { failures: number; sample?: string }): void => {
      failures += result.failures;
      sample ??= result.sample;
    };
    note(await writeAtRate(writerSockets, 0, WARMUP_S, sent, acked));
    const repetitions: Repetition[] = [];
    let next = RATE * WARMUP_S;
    for (let index = 0; index < REPEATS; index++) {
      const loaded = index % 2 === 1;
      const burner = loaded ? await startCpuBurner(COMPETING_DUTY) : undefined;
      try {
        const nodesBefore = nodes.map((node) => cpuSeconds(node.pid));
        const machineBefore = machineCpu().busy;
        const postgresBefore = treeCpuSeconds(postgres.pid);
        const started = performance.now();
        note(await writeAtRate(writerSockets, next, REPEAT_S, sent, acked));
        const seconds = (performance.now() - started) / 1000;
        repetitions.push({
          index: index + 1,
          loaded,
          first: next,
          last: next + RATE * REPEAT_S - 1,
          achieved: (RATE * REPEAT_S) / seconds,
          machineBusy: (machineCpu().busy - machineBefore) / (seconds * cores),
          load: loadavg()[0]!,
          nodeBusy: nodes.map((node, i) => (cpuSeconds(node.pid) - nodesBefore[i]!) / seconds),
          postgresBusy: (treeCpuSeconds(postgres.pid) - postgresBefore) / seconds,
        });
      } finally {
        await burner?.stop();
      }
      next += RATE * REPEAT_S;
    }
    const last = next - 1;
    const deadline = performance.now() + DRAIN_MS;
    while (subscribers.some((s) => !s.received.has(last)) && performance.now() < deadline) await sleep(20);
    await sleep(200); // anything late or duplicated
    for (const s of subscribers) await s.close();
    for (const writer of writers) await writer.close();
    if (failures > 0) throw new Error(`${failures} INSERTs failed, e.g. ${sample}`);

    /** Latencies of changes first..last at subscriber `s`, and whether every change since 0 arrived once. */
    const measure = (s: Subscriber, first: number, through: number) => {
      const commit: number[] = [];
      const fromSend: number[] = [];
      const fromAck: number[] = [];
      for (let n = first; n <= through; n++) {
        const receipt = s.received.get(n);
        if (!receipt) continue;
        commit.push(receipt.at + offset - receipt.committedAt);
        fromSend.push(receipt.at - sent.get(n)!);
        fromAck.push(receipt.at - acked.get(n)!);
      }
      return { commit, fromSend, fromAck };
    };
    const firstMeasured = RATE * WARMUP_S;
    const results = subscribers.map((s) => {
      const all = measure(s, firstMeasured, last);
      let missingChanges = 0;
      for (let n = 0; n <= last; n++) if (!s.received.has(n)) missingChanges++;
      return {
        node: s.node,
        p50: percentile(all.commit, 50),
        p99: percentile(all.commit, 99),
        worst: max(all.commit),
        sendP50: percentile(all.fromSend, 50),
        sendP99: percentile(all.fromSend, 99),
        ackP99: percentile(all.fromAck, 99),
        missing: missingChanges,
        duplicates: s.duplicates,
        outOfOrder: s.outOfOrder,
        perRepetition: repetitions.map((r) => percentile(measure(s, r.first, r.last).commit, 99)),
      };
    });
    const other = results.filter((r) => r.node !== 1);
    const worstP99 = max(other.map((r) => r.p99));
    /** Per repetition, the worse p99 of nodes 2 and 3. */
    const repetitionP99 = repetitions.map((_, i) => max(other.map((r) => r.perRepetition[i]!)));
    const clean = results.every((r) => r.missing === 0 && r.duplicates === 0 && r.outOfOrder === 0);
    // The target is a latency at RATE: a repetition that fell short of the rate did not measure it.
    const rates = repetitions.map((r) => r.achieved);
    const rateReached = Math.min(...rates) >= RATE * RATE_SHARE_REQUIRED;
    // What the path (the nodes and PostgreSQL) would need at RATE, from the CPU each change took: more
    // cores than the machine has means RATE is out of reach here whatever the bench's client does.
    const pathCores = repetitions.map((r) => r.nodeBusy.reduce((a, b) => a + b, 0) + r.postgresBusy);
    const coresAtRate = median(repetitions.map((r, i) => (pathCores[i]! / r.achieved) * RATE));
    const pct = (share: number): string => `${(share * 100).toFixed(0)}%`;
    const rateNote = rateReached
      ? ''
      : `; ${count(Math.min(...rates))}–${count(Math.max(...rates))} changes/s achieved, not ${count(RATE)}` +
        (coresAtRate > cores
          ? `: out of reach on ${cores} cores — the nodes and PostgreSQL used ${median(pathCores).toFixed(2)} ` +
            `cores at the achieved rate, ${coresAtRate.toFixed(2)} at ${count(RATE)}/s`
          : `: the machine was ${pct(median(repetitions.map((r) => r.machineBusy)))} busy (median), ` +
            `and the nodes and PostgreSQL would need ${coresAtRate.toFixed(2)} of its ${cores} cores at ` +
            `${count(RATE)}/s: the rest went to the bench's own writer and subscribers and the competing process`);
    const met = clean && rateReached && worstP99 <= TARGET_P99_MS && max(repetitionP99) <= TARGET_P99_MS;
    const ackP50 = percentile(
      [...acked.entries()].filter(([n]) => n >= firstMeasured).map(([n, at]) => at - sent.get(n)!),
      50,
    );
    const reader = captureReader(nodes);
    const markdown = [
      `Three nodes on one database of a throwaway PostgreSQL (loopback). The writer on node 1 sends one ` +
        `autocommit \`INSERT\` per change, paced at ${count(RATE)}/s and pipelined over ${WRITER_SOCKETS} ` +
        `sockets (the writer's own send → acknowledgement median ${ms(ackP50)}); ${WARMUP_S} s of warm-up, ` +
        `then ${REPEATS} repetitions of ${REPEAT_S} s (${count(RATE * REPEAT_S)} changes each), every other ` +
        `one with a competing process keeping ${pct(COMPETING_DUTY)} of a core busy. Commit → delivery is ` +
        `from PostgreSQL's commit timestamp of the change (its \`timestamp\`, to the millisecond) to its ` +
        `arrival, on the machine's one wall clock. Each subscriber checks that it got every change once ` +
        `and in sequence order. The capture slot was read by ` +
        `${reader === undefined ? 'a node that did not say so in its log' : `node ${reader}`}.`,
      '',
      table(
        [
          'subscriber',
          'commit → delivery p50',
          'p99',
          'worst',
          'send → delivery p50',
          'p99',
          'ack → delivery p99',
          'missing',
          'duplicates',
          'out of order',
        ],
        results.map((r) => [
          r.node === 1 ? 'node 1 (the writer’s, for comparison)' : `node ${r.node}`,
          ms(r.p50),
          ms(r.p99),
          ms(r.worst),
          ms(r.sendP50),
          ms(r.sendP99),
          ms(r.ackP99),
          count(r.missing),
          count(r.duplicates),
          count(r.outOfOrder),
        ]),
      ),
      '',
      table(
        [
          'repetition',
          'competing process',
          'achieved rate',
          'machine busy (all cores)',
          'load (1 min)',
          'nodes 1 / 2 / 3 (share of a core)',
          'PostgreSQL (share of a core)',
          'commit → delivery p99, nodes 2 and 3',
        ],
        repetitions.map((r, i) => [
          String(r.index),
          r.loaded ? `${pct(COMPETING_DUTY)} of a core` : 'none',
          `${count(r.achieved)}/s`,
          pct(r.machineBusy),
          r.load.toFixed(2),
          r.nodeBusy.map(pct).join(' / '),
          pct(r.postgresBusy),
          ms(repetitionP99[i]!),
        ]),
      ),
      '',
      `**p99 commit → delivery on another node than the writer: ${ms(worstP99)}** over all ` +
        `${count(REPEATS * REPEAT_S * RATE)} measured changes (the worse of nodes 2 and 3; per repetition ` +
        `${repetitionP99.map(ms).join(', ')}; target ≤ ${TARGET_P99_MS} ms overall and in every repetition: ` +
        `${verdict(met)}${rateNote}).` +
        (clean ? '' : ' **A subscriber missed, repeated or reordered changes.**'),
      '',
      'Every change takes the same path whichever node the subscriber is on: PostgreSQL decodes the commit ' +
        'from its WAL and streams it to the node that holds the capture slot, which numbers it into the ' +
        'change log and NOTIFYs, in one statement; every node then reads the new entries and sends them to ' +
        "its subscribers. So node 1's figures differ from the others' only by scheduling.",
      '',
      WHERE_THE_TIME_GOES,
    ].join('\n');
    return {
      key: KEY,
      title: TITLE,
      markdown,
      targets: [
        {
          name: `p99 commit → delivery on another node ≤ ${TARGET_P99_MS} ms at ${count(RATE)} changes/s`,
          measured:
            `${ms(worstP99)} (p50 ${ms(max(other.map((r) => r.p50)))}; per repetition ` +
            `${repetitionP99.map(ms).join(', ')}; send → delivery p99 ${ms(max(other.map((r) => r.sendP99)))})` +
            rateNote,
          met,
        },
      ],
    };
  } finally {
    await stopNodes(nodes);
    await dropDatabases(ctx, postgres, [DATABASE]);
  }
}

/**
 * Where the time goes: figures from runs with a timestamp at each step of the path (the nodes and this
 * bench wrote them to files; not part of the product), on this 2-core machine. Kept as text: the
 * instrumentation is not in the server.
 */
const WHERE_THE_TIME_GOES = [
  '**Where the time goes** (a run with a timestamp at each step, load average about 5 on this 2-core ' +
    'machine, nodes 2 and 3, p50 / p99):',
  '',
  table(
    ['step', 'p50', 'p99', 'what runs'],
    [
      [
        'commit → decoded by the capture node',
        '2.4 ms',
        '14 ms',
        'PostgreSQL: the walsender wakes at the WAL flush and sends the transaction; the capture node is also the writer’s node (1,000 INSERTs/s on its event loop)',
      ],
      [
        'decoded → numbered, stored and NOTIFYed',
        '3.0 ms',
        '11 ms',
        'one transaction per batch (3.4 decoded transactions a batch at 1,000/s): it was six round trips (BEGIN, lock, INSERT, UPDATE, NOTIFY, COMMIT); now one statement, `rustydb.apply_changes`',
      ],
      [
        'stored → the other node has the NOTIFY',
        '0 ms',
        '6–11 ms',
        'PostgreSQL signals each listening backend at commit',
      ],
      ['NOTIFY → the other node has read the entries', '1.0 ms', '13–15 ms', 'one query on the node’s pool'],
      [
        'read → handed to the subscriptions → received',
        '0.3 ms',
        '4–8 ms',
        'rendering, one socket write per tick, the subscriber’s event loop',
      ],
      ['**commit → delivery**', '**7.3 ms**', '**31 ms**', ''],
      [
        'send → commit (the writer’s own request)',
        '4.8 ms',
        '158 ms',
        'node 1 queues the INSERT and runs it as the session role (then in three round trips: BEGIN, INSERT, COMMIT; now one): whenever the machine got busier the writes queued for over 100 ms (p90 123 ms)',
      ],
    ],
  ),
  '',
  'The last row is why an earlier version of this benchmark, which timed from the send, reported a p99 of ' +
    '168 ms in that run where commit → delivery was 31 ms. Every step is a wake-up of another process (the ' +
    'capture node, a PostgreSQL backend, the walsender, each node’s listening connection and its query ' +
    'backend, the subscriber), so on a machine whose cores are taken by other work each step waits for a ' +
    'core and the p99 grows with the load: in a run at load average 18 (the machine 100% busy, the nodes ' +
    'getting 5–25% of a core and the writer managing 210–500 changes/s) it was 150–190 ms. There the ' +
    'numbering step took p50 4.9 ms, p99 42 ms with six round trips, and p50 4.0 ms, p99 34 ms as one ' +
    'statement in a run at load 12–18: on a saturated machine each step is mostly a wait for a core. And the ' +
    'path needs CPU in proportion to the rate: at 400–560 changes/s PostgreSQL used 37–54% of a core and ' +
    'the nodes 40–50% between them (the table above says how much each got), so when other work leaves ' +
    'less than that the path falls behind and the p99 measures the backlog. What ' +
    'would remove further steps: the capture node delivering its own subscribers from memory (only its ' +
    'own), or the NOTIFY carrying the records so that other nodes skip the read (any role can LISTEN, so ' +
    'they would have to be encrypted and authenticated with a key only the nodes hold).',
  '',
  'What each change cost, and what was cut (6 December 2026: pg_stat_statements and the CPU of each ' +
    'PostgreSQL process in runs of this benchmark, then runs alternated with the build before each step). ' +
    'On that day the same machine reached 410–560 changes/s, the nodes and PostgreSQL needing 3.6–4.1 cores ' +
    'at 1,000/s, and the log’s owner connections (the capture, the nodes’ reads) used more CPU than ' +
    'anything else in PostgreSQL. (1) Each node’s read of the new entries after a NOTIFY was planned as a ' +
    'scan and sort of the whole log until autovacuum first analyzes it: 0.69 ms a read at 11,000 entries. ' +
    'Bounded by the capture’s head it reads by index, 0.04 ms. (2) pg-cursor wrote each protocol message ' +
    'with a write of its own, ten writes to PostgreSQL per INSERT: now one corked write per step. (3) The ' +
    'INSERT took four round trips (BEGIN with eight SET LOCALs, the statement, the close of its portal, ' +
    'COMMIT): now one, the BEGIN, the settings (one set_config statement), the INSERT and its COMMIT in one ' +
    'write. (4) The capture’s apply_changes and the nodes’ reads were parsed and planned at every run: now ' +
    'prepared once per connection. After them the path needs about 1.6–1.9 cores at 1,000/s, and the rate ' +
    'is reached or nearly (900–1,000 changes/s): the rest of the machine’s two cores goes to the bench’s ' +
    'own writer and subscribers and, every other repetition, the competing process.',
].join('\n');
