/**
 * Runs the real server, `node packages/server/bin/rustydb.js serve`, as a child process so that its CPU
 * time and memory can be read from /proc without the bench's own client work mixed in.
 */
import { spawnNode, type Child } from './children.ts';
import { COLLECT_ON_SIGNAL } from './proc.ts';

export const ADMIN_USER = 'admin';
/** Only ever used against a throw-away data directory on loopback. */
export const ADMIN_PASSWORD = 'bench-admin-password';

/**
 * Flags that keep the server's heartbeat out of a fan-out's rounds: its pings (one per socket every 30 s
 * by default) are the server's work but no delivery's, and on a slow run would land in some rounds only.
 */
export const NO_HEARTBEAT_FLAGS: readonly string[] = [
  '--websocket-ping-interval',
  '86400',
  '--websocket-timeout',
  '86400',
];

export interface RustyServerOptions {
  dataDir: string;
  /** Extra `serve` flags, e.g. ['--statement-timeout', '600']. */
  flags?: readonly string[];
  /** Write a V8 CPU profile of the server into this directory (node --cpu-prof). */
  cpuProfileDir?: string;
  /** Keep the server's default rate limits (off unless asked: they would throttle most benchmarks). */
  rateLimiting?: boolean;
  /** Start it with COLLECT_ON_SIGNAL: a memory benchmark may then read its RSS after a full GC. */
  collectOnSignal?: boolean;
  /** Extra node flags for the server process, e.g. ['--import', probe] (bench/tools/idle-memory-probe.ts). */
  nodeArgs?: readonly string[];
  /** Another build of the server to run (a baseline), relative to the repository; default the tree's own. */
  bin?: string;
}

export interface RustyServerProcess {
  child: Child;
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT/api/v1/stream */
  streamUrl: string;
  stop(): Promise<void>;
}

/** The server's environment: ours minus any RUSTYDB_* setting that would change what is measured. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RUSTYDB_')) env[key] = value;
  }
  env.RUSTYDB_ADMIN_PASSWORD = ADMIN_PASSWORD;
  return env;
}

export async function startRustyServer(options: RustyServerOptions): Promise<RustyServerProcess> {
  const nodeArgs = [
    ...(options.cpuProfileDir
      ? [
          '--cpu-prof',
          '--cpu-prof-dir',
          options.cpuProfileDir,
          // The sampling interval in µs (node's default 1000), from the environment: finer for a
          // profile of a path that takes tens of microseconds.
          ...(process.env.PROF_INTERVAL ? ['--cpu-prof-interval', process.env.PROF_INTERVAL] : []),
        ]
      : []),
    ...(options.collectOnSignal ? COLLECT_ON_SIGNAL : []),
    ...(options.nodeArgs ?? []),
  ];
  const child = spawnNode(
    nodeArgs,
    options.bin ?? 'packages/server/bin/rustydb.js',
    [
      'serve',
      '--host',
      '127.0.0.1',
      // Port 0: the OS picks a free port, read back from the start-up line.
      '--port',
      '0',
      '--data-dir',
      options.dataDir,
      // The default 100 messages/s per connection would throttle the round-trip benchmark, not measure it.
      ...(options.rateLimiting ? [] : ['--no-enable-rate-limiting']),
      // Every benchmark client connects from loopback: per-address limits would count them all as one client.
      '--max-connections-per-ip',
      '0',
      '--max-unauthenticated-connections-per-ip',
      '0',
      '--max-unauthenticated-connections',
      '0',
      ...(options.flags ?? []),
    ],
    serverEnv(),
  );
  try {
    const match = await child.waitFor(/RustyDB listening on (http:\/\/\S+)/);
    const url = match[1]!;
    return {
      child,
      pid: child.pid,
      url,
      streamUrl: `${url.replace(/^http/, 'ws')}/api/v1/stream`,
      stop: () => child.stop(),
    };
  } catch (err) {
    await child.stop();
    throw err;
  }
}
