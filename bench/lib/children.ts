/**
 * Child processes the bench starts (the RustyDB server, the raw echo server). Every child is recorded
 * here by PID so that the bench stops exactly the processes it started, and nothing else, even when a
 * benchmark fails half-way or the user presses Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/lib/ is two levels down). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How long a child may take to print its ready line. tsx compiles the server on load (~1 s). */
const READY_TIMEOUT_MS = 30_000;
/** How long a child may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Output kept per child, for error messages. */
const OUTPUT_LIMIT = 16_384;

const running = new Set<Child>();
const started: Child[] = [];

export class Child {
  readonly pid: number;
  readonly #process: ChildProcess;
  readonly exited: Promise<number | null>;
  #output = '';

  constructor(proc: ChildProcess) {
    if (proc.pid === undefined) throw new Error('child process did not start');
    this.pid = proc.pid;
    this.#process = proc;
    // Always drain both pipes: a child blocked on a full stdout pipe would distort every figure.
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    running.add(this);
    started.push(this);
    void this.exited.then(() => running.delete(this));
  }

  get output(): string {
    return this.#output;
  }

  get alive(): boolean {
    return this.#process.exitCode === null && this.#process.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in the child's output; rejects if it exits first. */
  waitFor(pattern: RegExp, timeoutMs = READY_TIMEOUT_MS): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(this.#output);
        if (match) finish(() => resolve(match));
      };
      const onExit = (): void =>
        finish(() => reject(new Error(`child ${this.pid} exited before it was ready:\n${this.#output}`)));
      const timer = setTimeout(
        () =>
          finish(() => reject(new Error(`child ${this.pid} not ready in ${timeoutMs} ms:\n${this.#output}`))),
        timeoutMs,
      );
      const finish = (then: () => void): void => {
        clearTimeout(timer);
        this.#process.stdout?.off('data', check);
        this.#process.stderr?.off('data', check);
        this.#process.off('exit', onExit);
        then();
      };
      // Registered after the output collector, so `check` sees the chunk that just arrived.
      this.#process.stdout?.on('data', check);
      this.#process.stderr?.on('data', check);
      this.#process.once('exit', onExit);
      check();
    });
  }

  /** SIGTERM (the server shuts down cleanly and writes any --cpu-prof file), then SIGKILL if needed. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.#process.kill('SIGTERM');
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts `node [nodeArgs] script [args]` from the repository root with pipes for its output. */
export function spawnNode(
  nodeArgs: readonly string[],
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Child {
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Child(proc);
}

/** Stops every child still running; used on the way out, whatever happened. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop()));
}

/** The last lines of output of every child started so far, for a failure report. */
export function childOutputs(lines = 20): string {
  return started
    .map(
      (child) =>
        `--- child ${child.pid} output (last ${lines} lines) ---\n${child.output.split('\n').slice(-lines).join('\n')}`,
    )
    .join('\n');
}
