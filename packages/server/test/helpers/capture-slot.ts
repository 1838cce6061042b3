/**
 * Node processes (`rustydb serve`) on one PostgreSQL database, and which of them reads the database's
 * capture slot: PostgreSQL names the walsender's client port, and the node is the process holding the
 * socket of that local port (Linux /proc).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { asSuperuser, dropCaptureSlot, engineConfig } from './engines.ts';
import { sleep } from './test-server.ts';

export interface NodeProcess {
  server: ServerProcess;
  /** False once the test killed or stopped it: it no longer counts as a reader. */
  alive: boolean;
}

/** Nodes sharing one fresh PostgreSQL database, as the nodes of a cluster do. */
export interface NodesOnOneDatabase {
  nodes: NodeProcess[];
  /** The database's name, as pg_replication_slots gives it. */
  database: string;
  /** Stops every node, then drops the database's capture slot. */
  stop(): Promise<void>;
}

/**
 * Starts `count` nodes on a fresh database. If one fails to start, the others are stopped before the
 * error is thrown, so that no node is left holding the slot.
 */
export async function startNodes(count: number): Promise<NodesOnOneDatabase> {
  const databaseUrl = (await engineConfig('postgres')).database_url!;
  const flags = ['--engine', 'postgres', '--database-url', databaseUrl, '--enable-rate-limiting=false'];
  const nodes: NodeProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.server.stop()));
    await dropCaptureSlot(databaseUrl);
  };
  const started = await Promise.allSettled(Array.from({ length: count }, () => startServerProcess(flags)));
  for (const outcome of started)
    if (outcome.status === 'fulfilled') nodes.push({ server: outcome.value, alive: true });
  const failed = started.find((outcome) => outcome.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { nodes, database: new URL(databaseUrl).pathname.slice(1), stop };
}

/**
 * The live sockets of a /proc/net table from local port `port` to remote port `remotePort`, by inode.
 * Both ports are matched: an ephemeral port can be in use by several connections to different remotes,
 * and a closed one lingering in TIME_WAIT (inode 0) belongs to no process.
 */
function socketsBetween(table: string, port: number, remotePort: number): string[] {
  const inodes: string[] = [];
  for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[9] === '0') continue;
    const local = parseInt(fields[1]!.split(':')[1]!, 16);
    const remote = parseInt(fields[2]!.split(':')[1]!, 16);
    if (local === port && remote === remotePort) inodes.push(fields[9]!);
  }
  return inodes;
}

function holdsSocket(pid: number, inodes: readonly string[]): boolean {
  const names = new Set(inodes.map((inode) => `socket:[${inode}]`));
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return names.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
  } catch {
    return false; // the process is gone
  }
}

/**
 * The index of the running node that reads the slot of `database`; waits up to `waitMs` for one.
 * Creating the slot waits for every transaction running in the PostgreSQL cluster, and after a reader
 * goes away the others try for the slot once a second, so this can take seconds on a loaded machine.
 */
export async function slotReader(
  nodes: readonly NodeProcess[],
  database: string,
  waitMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + waitMs;
  let seen = 'no walsender holds the slot';
  while (Date.now() < deadline) {
    const [result] = (await asSuperuser([
      `SELECT a.client_port, inet_server_port() AS server_port, a.wait_event, now() - a.backend_start AS age
         FROM pg_replication_slots s
         JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.database = '${database}'`,
    ])) as {
      rows: { client_port: number; server_port: number; wait_event: string | null; age: unknown }[];
    }[];
    const walsender = result!.rows[0];
    if (walsender) {
      const port = walsender.client_port;
      const inodes = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) =>
        socketsBetween(table, port, walsender.server_port),
      );
      const holder = nodes.findIndex((node) => node.alive && holdsSocket(node.server.pid, inodes));
      if (holder !== -1) return holder;
      const holders = nodes.flatMap((node, i) =>
        holdsSocket(node.server.pid, inodes)
          ? [`node ${i} (${node.alive ? 'running' : 'killed or stopped'})`]
          : [],
      );
      seen =
        `a walsender for client port ${port} (waiting on ${walsender.wait_event}, started ` +
        `${JSON.stringify(walsender.age)} ago), its socket held by ${holders.join(', ') || 'no node process'}`;
    }
    await sleep(100);
  }
  throw new Error(`no running node reads the replication slot after ${waitMs} ms: ${seen}`);
}
