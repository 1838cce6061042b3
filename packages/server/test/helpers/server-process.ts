/**
 * The real server as a process of its own (`rustydb serve`), for tests that measure the server's memory:
 * its RSS, read from /proc, is then the server's alone and not mixed with the test's clients.
 */
import { readFileSync, rmSync } from 'node:fs';
import { cleanEnv, runCli, type CliRun } from './cli.ts';
import { freshDataDir, login, sleep } from './test-server.ts';

const PASSWORD = 'server-process-password';
const LISTENING = /RustyDB listening on (http:\/\/127\.0\.0\.1:\d+)/;

export interface ServerProcess {
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  /** A token for `admin`. */
  token: string;
  /** The server's resident memory now, bytes. */
  rss(): number;
  /** Runs SQL over HTTP as admin; throws unless it succeeded. */
  sql(text: string, params?: unknown[]): Promise<unknown[][]>;
  stop(): Promise<void>;
}

/**
 * @param options.dataDir a data directory to serve, kept at stop (default: a fresh one, removed at stop)
 * @param options.env variables added to the server's environment
 */
export async function startServerProcess(
  flags: string[] = [],
  options: { dataDir?: string; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? freshDataDir();
  const cli: CliRun = runCli(
    ['serve', '--port', '0', '--data-dir', dataDir, '--admin-password', PASSWORD, ...flags],
    cleanEnv(options.env),
  );
  const stop = async (): Promise<void> => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGTERM');
      await cli.exited(15_000).catch(() => cli.kill());
    }
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const url = (await cli.waitForOutput(LISTENING, 30_000))[1]!;
    const answer = await login(url, 'admin', PASSWORD);
    const token = (answer.body as { data: { token: string } }).data.token;
    const pid = cli.child.pid!;
    return {
      pid,
      url,
      wsUrl: url.replace(/^http/, 'ws'),
      token,
      rss() {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
      },
      async sql(text, params = []) {
        const res = await fetch(`${url}/api/v1/query`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ sql: text, params }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as { data?: { rows: unknown[][] } };
        if (res.status !== 200) throw new Error(`SQL failed (${res.status}): ${JSON.stringify(body)}`);
        return body.data!.rows;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Samples `read()` every `everyMs` while `work` runs; resolves with the largest value seen. */
export async function peakDuring(
  read: () => number,
  work: () => Promise<void>,
  everyMs = 200,
): Promise<number> {
  let peak = read();
  const timer = setInterval(() => (peak = Math.max(peak, read())), everyMs);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, read());
}

/** Waits until `read()` is at most `limit` (polling), or `timeoutMs` passes; returns the last value. */
export async function settleBelow(read: () => number, limit: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let value = read();
  while (value > limit && Date.now() < deadline) {
    await sleep(250);
    value = read();
  }
  return value;
}
