/**
 * `rustydb query "SQL" [--format table|json|csv] [--params JSON]`: one statement for scripts. The result
 * goes to stdout while it streams; errors go to stderr and the exit code is 1. Progress on long results
 * goes to stderr (a status line on a terminal), unless --quiet.
 */
import { parseArgs } from 'node:util';
import type { SqlValue } from '../index.ts';
import { CONNECTION_OPTIONS, CommandError, clientOptions, openClient } from './client-connection.ts';
import { OUTPUT_FORMATS, type OutputFormat } from './sql-output.ts';
import { StatementRun } from './statement-runner.ts';

export const QUERY_USAGE = `rustydb query "SQL" [--format table|json|csv] [--params '[1,"a"]'] [--chunk-size N] [--quiet]
  runs one statement ("-" reads it from stdin); exit code 1 on failure, the message on stderr`;

export interface CommandIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export function parseFormat(value: string | undefined): OutputFormat {
  const format = (value ?? 'table') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) {
    throw new CommandError(`--format must be one of ${OUTPUT_FORMATS.join(', ')}, not '${value}'`, 2);
  }
  return format;
}

export function parseInteger(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new CommandError(`--${name} must be an integer of at least ${min}`, 2);
  return n;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

export async function queryCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      format: { type: 'string' },
      params: { type: 'string' },
      'chunk-size': { type: 'string' },
      quiet: { type: 'boolean' },
      'progress-interval': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new CommandError(`usage: ${QUERY_USAGE}`, 2);
  const format = parseFormat(values.format);
  let params: SqlValue[] = [];
  if (values.params !== undefined) {
    try {
      params = JSON.parse(values.params) as SqlValue[];
    } catch {
      throw new CommandError('--params must be a JSON array', 2);
    }
    if (!Array.isArray(params)) throw new CommandError('--params must be a JSON array', 2);
  }
  const sql = positionals[0] === '-' ? await readAll(io.stdin) : positionals[0]!;
  const client = await openClient(
    clientOptions(values, io.env, { reconnectDelay: 300, maxReconnectAttempts: 2, heartbeat: false }),
  );
  const run = new StatementRun(client, sql, params, {
    format,
    write: (text) => io.stdout.write(text),
    chunkSize: parseInteger('chunk-size', values['chunk-size'], 1),
    progress: values.quiet
      ? undefined
      : {
          stream: io.stderr,
          intervalMs: parseInteger('progress-interval', values['progress-interval'], 1) ?? 1000,
        },
  });
  const interrupt = (): void => run.cancel();
  process.once('SIGINT', interrupt);
  try {
    await run.result();
    return 0;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    io.stderr.write(`rustydb: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', interrupt);
    await client.close();
  }
}
