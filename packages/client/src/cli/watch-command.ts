/**
 * `rustydb watch TABLE`: prints every change to a table as it happens, one line each, until Ctrl-C.
 * Resumes across reconnects without a gap; `--since N` starts from a sequence printed earlier.
 * `--collection NAME` watches a document collection's change stream instead.
 */
import { parseArgs } from 'node:util';
import type { RowFilter, TableEvent, WatchEvent } from '../index.ts';
import { CONNECTION_OPTIONS, CommandError, clientOptions, openClient } from './client-connection.ts';
import { parseInteger, type CommandIo } from './query-command.ts';

export const WATCH_USAGE = `rustydb watch TABLE [--filter JSON] [--events insert,update,delete] [--since SEQ] [--snapshot] [--json]
rustydb watch --collection NAME [--json]
  prints changes as they happen until Ctrl-C; --json prints one JSON object per line`;

function describeTableEvent(event: TableEvent): string {
  switch (event.type) {
    case 'snapshot':
      return `#${event.sequence} snapshot ${event.rows.length} rows\n${event.rows.map((r) => `  ${JSON.stringify(r)}`).join('\n')}`;
    case 'reset':
      return `reset: the server no longer has the changes after #${event.lastSequence}; reloading the table`;
    case 'change':
      if (event.op === 'schema')
        return `#${event.sequence} schema ${event.schema?.action ?? ''} ${event.table}`;
      if (event.op === 'delete' || event.op === 'leave')
        return `#${event.sequence} ${event.op} ${JSON.stringify(event.key ?? event.oldRow)}`;
      return `#${event.sequence} ${event.op} ${JSON.stringify(event.row)}`;
  }
}

function describeWatchEvent(event: WatchEvent): string {
  if (event.operationType === 'reset') return 'reset: events were missed; watching from now on';
  const key = JSON.stringify(event.documentKey?._id ?? null);
  const doc = event.fullDocument ? ` ${JSON.stringify(event.fullDocument)}` : '';
  const update = event.updateDescription ? ` ${JSON.stringify(event.updateDescription)}` : '';
  return `${event.operationType} ${key}${doc}${update}`;
}

export async function watchCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      filter: { type: 'string' },
      events: { type: 'string' },
      since: { type: 'string' },
      snapshot: { type: 'boolean' },
      json: { type: 'boolean' },
      collection: { type: 'string' },
    },
  });
  const collection = values.collection;
  if (collection === undefined ? positionals.length !== 1 : positionals.length !== 0) {
    throw new CommandError(`usage: ${WATCH_USAGE}`, 2);
  }
  let filter: RowFilter | undefined;
  if (values.filter !== undefined) {
    try {
      filter = JSON.parse(values.filter) as RowFilter;
    } catch {
      throw new CommandError('--filter must be a JSON object, e.g. {"status":"open"}', 2);
    }
  }
  const events = values.events?.split(',').map((e) => e.trim()) as
    ('insert' | 'update' | 'delete')[] | undefined;
  const since = parseInteger('since', values.since, 0);
  const client = await openClient(clientOptions(values, io.env, { reconnectDelay: 1000 }));
  client.on('state', (state) => {
    if (state === 'reconnecting') io.stderr.write('rustydb: connection lost; reconnecting\n');
  });
  const subscription =
    collection !== undefined
      ? client.watch(collection)
      : client.subscribe(positionals[0]!, {
          ...(filter ? { filter } : {}),
          ...(events ? { events } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(values.snapshot ? { snapshot: true } : {}),
        });
  const stop = (): void => void subscription.unsubscribe();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await subscription.ready();
    io.stderr.write(`rustydb: watching ${collection ?? positionals[0]} (Ctrl-C to stop)\n`);
    for await (const event of subscription as AsyncIterable<TableEvent | WatchEvent>) {
      const line = values.json
        ? JSON.stringify(event)
        : 'type' in event
          ? describeTableEvent(event)
          : describeWatchEvent(event);
      io.stdout.write(`${line}\n`);
    }
    return 0;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    io.stderr.write(`rustydb: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await client.close();
  }
}
