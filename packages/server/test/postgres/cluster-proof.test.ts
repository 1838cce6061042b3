/**
 * The cluster proof (issue 9): three nodes (real `rustydb serve` processes) on one PostgreSQL database,
 * three writers spread over the nodes, six subscribers spread over the nodes. The node reading the
 * replication slot is killed with SIGKILL mid-run; its writer and its subscribers move to the other
 * nodes, the subscribers resuming with `since`. At the end every subscriber has seen every committed
 * change exactly once and in order: its sequences are dense from where it subscribed to the log's
 * head, and replaying its changes gives exactly the table's final content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { type RawData } from 'ws';
import { sleep } from '../helpers/test-server.ts';
import { slotReader, startNodes, type NodeProcess } from '../helpers/capture-slot.ts';
import { asSuperuser, postgresCases } from '../helpers/engines.ts';

const WRITE_FOR_MS = 4000;
const KILL_AFTER_MS = 1500;
const SUBSCRIBERS = 6;
const CATCH_UP_MS = 20_000;

type Node = NodeProcess;

interface Change {
  sequence: number;
  op: string;
  key: { id: number } | null;
  row: Record<string, unknown> | null;
}

/** The next node after `index` that is still running. */
function nextAlive(nodes: readonly Node[], index: number): number {
  for (let step = 1; step <= nodes.length; step++) {
    const candidate = (index + step) % nodes.length;
    if (nodes[candidate]!.alive) return candidate;
  }
  throw new Error('no node is running');
}

/**
 * Runs one statement over HTTP; when its node does not answer, moves to the next node and sends it
 * again (each statement is written so that sending it twice is harmless or simply another change).
 */
async function write(
  nodes: readonly Node[],
  at: { node: number },
  token: string,
  sql: string,
  params: unknown[],
): Promise<void> {
  for (let attempt = 0; attempt < 30; attempt++) {
    if (!nodes[at.node]!.alive) at.node = nextAlive(nodes, at.node);
    try {
      const res = await fetch(`${nodes[at.node]!.server.url}/api/v1/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sql, params }),
        signal: AbortSignal.timeout(5000),
      });
      const body = await res.text();
      if (res.status === 200) return;
      if (res.status < 500) throw new Error(`write refused (${res.status}): ${body}`);
    } catch (err) {
      if ((err as Error).message.startsWith('write refused')) throw err;
    }
    // The node died (or is dying): the next one.
    at.node = nextAlive(nodes, at.node);
    await sleep(50);
  }
  throw new Error(`no node took the write ${sql}`);
}

/** A table subscriber that follows its node and, when the node goes away, resumes on the next one. */
class Follower {
  readonly changes: Change[] = [];
  /** Every node it attached to, in order. */
  readonly attachedTo: number[] = [];
  start: number | undefined;
  #stopped = false;
  #socket: WebSocket | undefined;
  readonly #nodes: readonly Node[];
  readonly #token: string;
  #failure: Error | undefined;

  constructor(nodes: readonly Node[], token: string) {
    this.#nodes = nodes;
    this.#token = token;
  }

  get last(): number | undefined {
    return this.changes.at(-1)?.sequence ?? this.start;
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Attaches to `node` and resolves once the subscription is acknowledged. */
  attach(node: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(
        `${this.#nodes[node]!.server.wsUrl}/api/v1/stream?token=${encodeURIComponent(this.#token)}`,
      );
      this.#socket = ws;
      let acknowledged = false;
      const since = this.last;
      ws.on('message', (data: RawData) => {
        const message = JSON.parse(data.toString()) as {
          type: string;
          id?: string;
          payload: Record<string, unknown>;
        };
        if (message.type === 'auth_success') {
          ws.send(
            JSON.stringify({
              type: 'subscribe',
              id: 'ledger',
              payload: { table: 'ledger', ...(since === undefined ? {} : { since }) },
            }),
          );
        } else if (message.type === 'subscribed' && message.id === 'ledger') {
          acknowledged = true;
          this.start ??= message.payload.sequence as number;
          this.attachedTo.push(node);
          resolve();
        } else if (message.type === 'change' && message.id === 'ledger') {
          this.changes.push(message.payload as unknown as Change);
        } else if (message.type === 'error' || message.type === 'reset' || message.type === 'auth_error') {
          this.#failure ??= new Error(`subscriber got ${JSON.stringify(message)}`);
        }
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        if (!acknowledged) reject(new Error(`node ${node} closed before acknowledging`));
        if (this.#stopped || !acknowledged) return;
        // Its node went away: resume on another, from the last change it received.
        void this.#reattach(node);
      });
    });
  }

  async #reattach(from: number): Promise<void> {
    for (let attempt = 0; attempt < 20 && !this.#stopped; attempt++) {
      try {
        await this.attach(nextAlive(this.#nodes, from));
        return;
      } catch {
        await sleep(100);
      }
    }
    this.#failure ??= new Error('could not resume on any node');
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.terminate();
  }
}

postgresCases('PostgreSQL cases', () => {
  test('3 nodes, 3 writers, 6 subscribers, one node killed -9 mid-run: every change once and in order', async () => {
    const cluster = await startNodes(3);
    const { nodes, database } = cluster;
    const followers: Follower[] = [];
    try {
      const token = nodes[0]!.server.token;
      await nodes[1]!.server.sql(
        'CREATE TABLE ledger (id int PRIMARY KEY, writer int NOT NULL, n int NOT NULL)',
      );
      // The node killed is the one reading the replication slot: the capture has to move too.
      const victim = await slotReader(nodes, database);

      for (let i = 0; i < SUBSCRIBERS; i++) followers.push(new Follower(nodes, token));
      await Promise.all(followers.map((follower, i) => follower.attach(i % nodes.length)));

      const stopAt = Date.now() + WRITE_FOR_MS;
      const writers = [0, 1, 2].map(async (w) => {
        const at = { node: w };
        for (let n = 1; Date.now() < stopAt; n++) {
          const id = w * 1_000_000 + n;
          await write(nodes, at, token, 'INSERT INTO ledger VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING', [
            id,
            w,
            n,
          ]);
          if (n % 5 === 0)
            await write(nodes, at, token, 'UPDATE ledger SET n = n + 1 WHERE id = ?', [id - 1]);
          if (n % 7 === 0) await write(nodes, at, token, 'DELETE FROM ledger WHERE id = ?', [id - 3]);
        }
        return at.node;
      });
      await sleep(KILL_AFTER_MS);
      nodes[victim]!.alive = false;
      process.kill(nodes[victim]!.server.pid, 'SIGKILL');
      const writersEndedOn = await Promise.all(writers);
      assert.ok(!writersEndedOn.includes(victim), 'the killed node’s writer moved on');
      assert.notEqual(await slotReader(nodes, database), victim, 'another node reads the slot');

      // Every subscriber catches up with the log's head, whichever node it is on now.
      const headNow = async (): Promise<number> => {
        const [result] = (await asSuperuser(['SELECT head FROM rustydb.capture WHERE id = 1'], database)) as {
          rows: { head: string }[];
        }[];
        return Number(result!.rows[0]!.head);
      };
      const content = await nodes[nextAlive(nodes, victim)]!.server.sql(
        'SELECT id, writer, n FROM ledger ORDER BY id',
      );
      const head = await headNow();
      const deadline = Date.now() + CATCH_UP_MS;
      while (followers.some((f) => f.last !== head && !f.failure) && Date.now() < deadline) await sleep(100);
      assert.equal(await headNow(), head, 'nothing was written after the writers stopped');

      const expected = new Map(content.map(([id, writer, n]) => [id as number, { id, writer, n }]));
      assert.ok(expected.size > 30, `the writers wrote (${expected.size} rows)`);
      followers.forEach((follower, i) => {
        assert.equal(follower.failure, undefined, `subscriber ${i}`);
        const start = follower.start!;
        // Dense from where it subscribed to the head: nothing missed, nothing twice, in order.
        assert.deepEqual(
          follower.changes.map((c) => c.sequence),
          Array.from({ length: head - start }, (_, k) => start + 1 + k),
          `subscriber ${i} (attached to nodes ${follower.attachedTo.join(', ')})`,
        );
        const replayed = new Map<number, Record<string, unknown>>();
        for (const change of follower.changes) {
          if (change.op === 'delete') replayed.delete(change.key!.id);
          else replayed.set(change.key!.id, change.row!);
        }
        assert.deepEqual(replayed, expected, `subscriber ${i}: its changes give the table's content`);
      });
      // The killed node's subscribers moved to the others; the others stayed where they were.
      for (const [i, follower] of followers.entries()) {
        const first = i % nodes.length;
        assert.equal(follower.attachedTo[0], first);
        assert.equal(follower.attachedTo.length, first === victim ? 2 : 1, `subscriber ${i}`);
      }
    } finally {
      for (const follower of followers) follower.stop();
      await cluster.stop();
    }
  });
});
