/**
 * (l) Fan-out over a cluster: one change delivered to 10,000 subscribers spread evenly over three RustyDB
 * nodes on one PostgreSQL database, against the same 10,000 subscribers on a single node (its own
 * database on the same PostgreSQL server). Every socket is authenticated and subscribed to one table;
 * one INSERT through node 1 of each configuration must reach all of them. Timed from the INSERT's send
 * to the last subscriber's receipt, on the clock all processes share; the two configurations take turns,
 * so both see the same machine. The subscribers are held by the same client processes as in (e).
 */
import { availableParallelism } from 'node:os';
import { count, max, median, ms, ratio, sleep, verdict } from './lib/stats.ts';
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
import { SubscriberPool, sharedClock, type RoundReport, type Side } from './lib/subscriber-pool.ts';

const KEY = 'l';
const TITLE = 'Fan-out over 3 nodes: one change to 10,000 subscribers, against 1 node';
const SUBSCRIBERS = 10_000;
const NODES = 3;
const CLIENT_PROCESSES = 4;
const CONNECT_CONCURRENCY = 50;
const ROUNDS = 7;
const WARMUP_ROUNDS = 1;
const ROUND_TIMEOUT_MS = 30_000;
const PHASE_TIMEOUT_MS = 120_000;
const PAUSE_MS = 500;
const TABLE = 'fan_out';
const NOTE = 'one change, fanned out to every subscriber of the table';
const TARGET_RATIO = 0.6;

interface Configuration {
  side: Side;
  label: string;
  nodes: RustyServerProcess[];
  writer: StreamConnection;
}

interface Round {
  side: Side;
  complete: boolean;
  delivered: number;
  expected: number;
  invalid: number;
  last: number;
  p50: number;
  /** CPU seconds of all the configuration's nodes during the round. */
  cpu: number;
}

/** `total` split into `parts` whole shares that differ by at most one. */
function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

const nodesCpu = (nodes: readonly RustyServerProcess[]): number =>
  nodes.reduce((sum, node) => sum + cpuSeconds(node.pid), 0);

export async function runClusterFanOut(ctx: BenchContext): Promise<BenchReport> {
  const missing = postgresMissing();
  if (missing) return notMeasured(KEY, TITLE, missing);
  const postgres = await startTestPostgres();
  const started: RustyServerProcess[] = [];
  let pool: SubscriberPool | undefined;
  try {
    const perProcess = shares(SUBSCRIBERS, CLIENT_PROCESSES);
    // Each node holds its share of the sockets, with room for the writer.
    const single = await startNodes(ctx, postgres, 'fan_one', 1, [
      '--websocket-max-connections',
      String(SUBSCRIBERS + 100),
    ]);
    started.push(...single);
    const cluster = await startNodes(ctx, postgres, 'fan_three', NODES, [
      '--websocket-max-connections',
      String(Math.ceil(SUBSCRIBERS / NODES) + 100),
    ]);
    started.push(...cluster);
    ctx.log(
      `  (${KEY}) PostgreSQL pid ${postgres.pid}; 1 node pid ${single[0]!.pid}; 3 nodes pids ${cluster.map((n) => n.pid).join(', ')}`,
    );
    const configurations: Configuration[] = [];
    for (const [side, label, nodes] of [
      ['one-node', '1 node', single],
      ['three-nodes', '3 nodes', cluster],
    ] as const) {
      const token = await login(nodes[0]!.url);
      const writer = await StreamConnection.open(nodes[0]!.streamUrl, token);
      await writer.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, round integer NOT NULL, note text)`);
      configurations.push({ side, label, nodes: [...nodes], writer });
    }

    pool = await SubscriberPool.start(CLIENT_PROCESSES);
    const clients = pool;
    for (const config of configurations) {
      // A token from node 1 serves every node: the signing secret is shared through the database.
      const token = await login(config.nodes[0]!.url);
      ctx.log(`  (${KEY}) ${config.label}: opening and subscribing ${count(SUBSCRIBERS)} sockets`);
      for (const [n, node] of config.nodes.entries()) {
        await clients.all(
          (i) => ({
            cmd: 'connect',
            side: config.side,
            url: node.streamUrl,
            token,
            count: shares(perProcess[i]!, config.nodes.length)[n]!,
            concurrency: CONNECT_CONCURRENCY,
          }),
          PHASE_TIMEOUT_MS,
        );
      }
      await clients.all(
        () => ({ cmd: 'subscribe', side: config.side, table: TABLE, concurrency: CONNECT_CONCURRENCY }),
        PHASE_TIMEOUT_MS,
      );
    }
    const clock = await clients.clockCheck();

    const runRound = async (config: Configuration, round: number): Promise<Round> => {
      await clients.all(() => ({ cmd: 'arm', side: config.side }), PHASE_TIMEOUT_MS);
      const cpuBefore = nodesCpu(config.nodes);
      const sentAt = sharedClock();
      const inserted = config.writer
        .query(`INSERT INTO ${TABLE} (round, note) VALUES (?, ?)`, [round, NOTE], ROUND_TIMEOUT_MS)
        .then(
          () => undefined,
          (err: Error) => err,
        );
      const complete = await clients.waitComplete(config.side, ROUND_TIMEOUT_MS);
      const cpu = nodesCpu(config.nodes) - cpuBefore;
      const failed = await inserted;
      if (failed) throw failed;
      const reports = await clients.all<RoundReport>(
        () => ({ cmd: 'report', side: config.side, round }),
        PHASE_TIMEOUT_MS,
      );
      const latencies = reports.flatMap((r) => r.receipts.filter((t) => t > 0).map((t) => t - sentAt));
      return {
        side: config.side,
        complete,
        delivered: latencies.length,
        expected: reports.reduce((sum, r) => sum + r.expected, 0),
        invalid: reports.reduce((sum, r) => sum + r.invalid, 0),
        last: complete ? max(latencies) : Infinity,
        p50: median(latencies),
        cpu,
      };
    };

    const rounds: Round[] = [];
    for (let round = -WARMUP_ROUNDS; round <= ROUNDS; round++) {
      if (round === 0) continue;
      // Alternating which configuration goes first: neither always follows the other's clean-up.
      const order = round % 2 === 0 ? [...configurations].reverse() : configurations;
      for (const config of order) {
        const result = await runRound(config, round);
        if (round < 0 && !result.complete) {
          throw new Error(
            `${config.label}: warm-up change reached ${result.delivered} of ${result.expected} subscribers`,
          );
        }
        if (round > 0) rounds.push(result);
        await sleep(PAUSE_MS);
      }
    }
    for (const config of configurations) await config.writer.close();

    const stat = (side: Side) => {
      const list = rounds.filter((r) => r.side === side);
      return {
        last: median(list.map((r) => r.last)),
        worst: max(list.map((r) => r.last)),
        p50: median(list.map((r) => r.p50)),
        cpu: median(list.map((r) => r.cpu)) * 1000,
        incomplete: list.filter((r) => !r.complete).length,
        invalid: list.reduce((sum, r) => sum + r.invalid, 0),
        each: list.map((r) => ms(r.last)).join(', '),
      };
    };
    const one = stat('one-node');
    const three = stat('three-nodes');
    const r = three.last / one.last;
    const met = three.incomplete === 0 && three.invalid === 0 && r <= TARGET_RATIO;
    const cores = availableParallelism();
    const markdown = [
      `${count(SUBSCRIBERS)} authenticated subscribers of \`${TABLE}\` held by ${CLIENT_PROCESSES} client processes, ` +
        `for each configuration at once: **1 node** (all ${count(SUBSCRIBERS)} on it) and **3 nodes** on one ` +
        `database (${shares(SUBSCRIBERS, NODES).map(count).join(' / ')} per node, with a token node 1 issued). ` +
        `Each configuration has its own database on the same throwaway PostgreSQL (loopback). One \`INSERT\` ` +
        `through node 1 per round, timed from its send to the last subscriber's receipt of the \`change\`; ` +
        `${ROUNDS} rounds per configuration, taking turns, after ${WARMUP_ROUNDS} warm-up each. The clocks ` +
        `of the processes agreed within ${ms(clock.skewMs)}. The path of a change is the same in both: ` +
        `PostgreSQL's logical decoding → the node holding the capture slot numbers it into the change log ` +
        `and NOTIFYs → every node's change feed reads it and fans it out to its own subscribers. Of the 3 ` +
        `nodes, node ${captureReader(cluster) ?? '?'} read the capture slot.`,
      '',
      table(
        ['', 'last delivery (median)', 'worst', 'median subscriber', 'node CPU per round (all nodes)'],
        [
          ['1 node', ms(one.last), ms(one.worst), ms(one.p50), ms(one.cpu)],
          ['3 nodes', ms(three.last), ms(three.worst), ms(three.p50), ms(three.cpu)],
          [
            'ratio',
            ratio(r),
            ratio(three.worst / one.worst),
            ratio(three.p50 / one.p50),
            ratio(three.cpu / one.cpu),
          ],
        ],
      ),
      '',
      `**Time to last delivery, 3 nodes / 1 node: ${ratio(r)}** (median of ${ROUNDS}; target ≤ ${TARGET_RATIO}: ` +
        `${verdict(met)}).` +
        (three.incomplete + one.incomplete > 0
          ? ` **Incomplete rounds: 3 nodes ${three.incomplete}, 1 node ${one.incomplete}.**`
          : '') +
        (three.invalid + one.invalid > 0 ? ` **${three.invalid + one.invalid} unexpected messages.**` : ''),
      '',
      `Each round, last delivery — 1 node: ${one.each}; 3 nodes: ${three.each}.`,
      '',
      `The three nodes used ${ms(three.cpu)} of CPU per round between them, one node ${ms(one.cpu)}: the ` +
        `per-subscriber work (rendering and sending ${count(SUBSCRIBERS)} envelopes) is split between the nodes, ` +
        `not repeated, and each node reads the change log once per change. The nodes finish sooner only when ` +
        `they can run at the same time: this machine has ${cores} core(s), shared by the nodes, PostgreSQL, ` +
        `the ${CLIENT_PROCESSES} client processes receiving the messages and whatever else runs here (see the ` +
        `interference figure above), so rounds that found the machine busy vary widely.`,
    ].join('\n');
    return {
      key: KEY,
      title: TITLE,
      markdown,
      targets: [
        {
          name: `3 nodes' last delivery ≤ ${TARGET_RATIO}× 1 node's`,
          measured: `${ratio(r)} (${ms(three.last)} vs ${ms(one.last)})`,
          met,
        },
      ],
    };
  } finally {
    await pool?.stop();
    await stopNodes(started);
    postgres.stop();
  }
}
