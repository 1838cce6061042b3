/**
 * Client processes the bench drives over Node's IPC channel: the bench sends numbered commands, the
 * process answers each by its number, and may also send events of its own (messages without a number).
 * One Node process saturates long before a server does, so load is spread over several of these.
 * Each is tracked by PID with the bench's other children and stopped on the way out, whatever happens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Child, REPO_ROOT } from './children.ts';

type Answer = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string };

/** What a client process prints once it listens for commands. */
const READY_LINE = 'client process ready';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** The bench's side: one client process running `script` (a path from the repository root). */
export class IpcProcess<Command extends { cmd: string }, Event = never> {
  readonly child: Child;
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;

  constructor(script: string, onEvent: (event: Event) => void = () => {}) {
    this.#proc = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: REPO_ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = new Child(this.#proc);
    this.#proc.on('message', (raw) => {
      const message = raw as Answer | Event;
      if (typeof message !== 'object' || message === null || !('seq' in message)) {
        onEvent(message as Event);
        return;
      }
      const pending = this.#pending.get(message.seq);
      if (!pending) return;
      this.#pending.delete(message.seq);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new Error(`client process ${this.child.pid}: ${message.error}`));
    });
    void this.child.exited.then(() => {
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`client process ${this.child.pid} exited:\n${this.child.output}`));
      }
      this.#pending.clear();
    });
  }

  /** Resolves once the process listens for commands. */
  async ready(): Promise<void> {
    await this.child.waitFor(new RegExp(READY_LINE));
  }

  ask<T>(command: Command, timeoutMs: number): Promise<T> {
    const seq = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(
          new Error(`client process ${this.child.pid}: no answer to '${command.cmd}' in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#pending.set(seq, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.#proc.send({ ...command, seq });
    });
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

/**
 * Starts `count` client processes running `script` and waits until each listens for commands; `onEvent`
 * learns which of them (by index) sent an event.
 */
export async function startIpcProcesses<Command extends { cmd: string }, Event = never>(
  script: string,
  count: number,
  onEvent?: (event: Event, index: number) => void,
): Promise<IpcProcess<Command, Event>[]> {
  const processes = Array.from(
    { length: count },
    (_, index) => new IpcProcess<Command, Event>(script, (event) => onEvent?.(event, index)),
  );
  try {
    await Promise.all(processes.map((p) => p.ready()));
  } catch (err) {
    await Promise.all(processes.map((p) => p.stop()));
    throw err;
  }
  return processes;
}

/** The client process's side: answers every command with what `handle` resolves to (or its error). */
export function serveCommands<Command extends { cmd: string }>(
  handle: (command: Command) => Promise<unknown>,
): void {
  process.on('message', (raw) => {
    const { seq, ...command } = raw as Command & { seq: number };
    handle(command as unknown as Command).then(
      (result) => process.send?.({ seq, ok: true, result } satisfies Answer),
      (err: Error) => process.send?.({ seq, ok: false, error: err.stack ?? String(err) } satisfies Answer),
    );
  });
  // The bench went away: nothing left to do here.
  process.on('disconnect', () => process.exit(0));
  process.stdout.write(`${READY_LINE}\n`);
}

/** Sends an event (a message without a command number) to the bench. */
export function sendEvent(event: unknown): void {
  process.send?.(event);
}
