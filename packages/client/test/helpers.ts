/**
 * Test helpers for the SDK: the real server (packages/server's startTestServer), a server that can
 * be stopped and started again on the same port and data, a TCP relay that can freeze a connection
 * (a network fault, not a fake server), and bounded waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { RustyDBClient, type ClientOptions } from '@rustydb/client';
import type { ServerConfig } from '../../server/src/config/config.ts';
import {
  ADMIN_PASSWORD,
  freshDataDir,
  login,
  sql,
  startTestServer,
  type TestServer,
} from '../../server/test/helpers/test-server.ts';

export { ADMIN_PASSWORD, login, sql, startTestServer, type TestServer };

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs` with `what`. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(20);
  }
}

/** Rejects when `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output; killed (and rejected) after `timeoutMs`. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<ProcessResult> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<ProcessResult>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return within(exited, options.timeoutMs ?? 60_000, `${command} ${args.join(' ')}`).finally(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** The environment of a user's shell: none of the test runner's loader options, no RUSTYDB_* setting. */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RUSTYDB_') && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return { ...env, ...extra };
}

/** A `rustydb serve` started as its own process (group), as a user starts it. */
export interface ServeProcess {
  child: ChildProcess;
  /** From its "RustyDB listening on URL" line. */
  url: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM to its process group (a shell and the server it started), SIGKILL if it lingers. */
  stop(): Promise<void>;
}

/** Runs `command args` (which starts `rustydb serve`) and resolves once the server is listening. */
export async function startServeProcess(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<ServeProcess> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // The group is gone already.
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) signal('SIGTERM');
    await within(exited, 15_000, 'the server stopping').catch(() => signal('SIGKILL'));
  };
  try {
    const url = await eventually(
      () => {
        if (child.exitCode !== null) throw new Error(`rustydb serve exited:\n${output}`);
        return /RustyDB listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
      },
      'rustydb serve listening',
      60_000,
    );
    return { child, url, output: () => output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The real server on a fixed port and data directory, which `restart()` stops (every client gets
 * 1001) and starts again on the same port and data: what a client sees when its server is restarted.
 */
export class RestartableServer {
  readonly dataDir = freshDataDir();
  readonly overrides: Partial<ServerConfig>;
  port = 0;
  current: TestServer | undefined;

  constructor(overrides: Partial<ServerConfig> = {}) {
    this.overrides = overrides;
  }

  static async start(overrides: Partial<ServerConfig> = {}): Promise<RestartableServer> {
    const server = new RestartableServer(overrides);
    server.port = await freePort();
    await server.start();
    return server;
  }

  get ts(): TestServer {
    if (!this.current) throw new Error('the server is stopped');
    return this.current;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // The port was free a moment ago; another process may take it in between, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        this.current = await startTestServer(
          { ...this.overrides, port: this.port },
          { dataDir: this.dataDir },
        );
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt >= 50) throw err;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.close();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Reads an iterable in the background; `done` resolves with the error it threw, or 'finished'. */
export function collect<E>(iterable: AsyncIterable<E>): { events: E[]; done: Promise<unknown> } {
  const events: E[] = [];
  const done = (async () => {
    for await (const event of iterable) events.push(event);
    return 'finished';
  })().catch((err: unknown) => err);
  return { events, done };
}

/** Client options for tests: the admin login, and reconnects fast enough for a test's time budget. */
export function testClientOptions(url: string, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    url,
    username: 'admin',
    password: ADMIN_PASSWORD,
    reconnectDelay: 50,
    maxReconnectDelay: 400,
    maxReconnectAttempts: 30,
    connectionTimeout: 5000,
    ...extra,
  };
}

/** Opens a client and waits until it is authenticated. */
export async function openClient(url: string, extra: Partial<ClientOptions> = {}): Promise<RustyDBClient> {
  const client = new RustyDBClient(testClientOptions(url, extra));
  try {
    await within(client.ready(), 15_000, 'client.ready()');
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

/**
 * A TCP relay in front of a server. `freeze()` stops relaying on every open connection without
 * closing it (a half-dead network path); `refuse` drops new connections (the server unreachable).
 * The target port is dialled anew for each connection, so the server behind may restart.
 */
export class TcpRelay {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  port = 0;
  /** While true, new connections are dropped at once (the server looks unreachable). */
  refuse = false;
  /** When each connection attempt arrived (performance.now()), refused ones included. */
  readonly attempts: number[] = [];

  private constructor(targetPort: number) {
    this.#server = createServer((inbound) => {
      this.attempts.push(performance.now());
      if (this.refuse) {
        inbound.destroy();
        return;
      }
      const outbound = tcpConnect(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [inbound, outbound];
      this.#pairs.add(pair);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      const drop = (): void => {
        inbound.destroy();
        outbound.destroy();
        this.#pairs.delete(pair);
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
    });
  }

  static async start(targetPort: number): Promise<TcpRelay> {
    const relay = new TcpRelay(targetPort);
    await new Promise<void>((resolve) => relay.#server.listen(0, '127.0.0.1', resolve));
    relay.port = (relay.#server.address() as { port: number }).port;
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every open connection stops passing data in both directions, and stays open. */
  freeze(): void {
    for (const [inbound, outbound] of this.#pairs) {
      inbound.unpipe(outbound);
      outbound.unpipe(inbound);
      inbound.pause();
      outbound.pause();
    }
  }

  /** Every open connection is cut (both sides see the TCP connection reset). */
  dropAll(): void {
    for (const [inbound, outbound] of this.#pairs) {
      inbound.destroy();
      outbound.destroy();
    }
    this.#pairs.clear();
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    for (const [inbound, outbound] of this.#pairs) {
      inbound.destroy();
      outbound.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Runs fixture SQL on whichever server instance is current. */
export function fixture(server: RestartableServer | TestServer, text: string, params: unknown[] = []) {
  return sql(server instanceof RestartableServer ? server.ts : server, text, params);
}
