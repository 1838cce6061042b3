/**
 * `rustydb gen types [--out FILE]`: TypeScript types for every table and collection the user may read,
 * from the server's schema (`GET /api/v1/schema`), written to FILE or stdout (type-generator.ts).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, CommandError, clientOptions, openClient } from './client-connection.ts';
import type { CommandIo } from './query-command.ts';
import { generateTypes } from './type-generator.ts';

export const GEN_USAGE = `rustydb gen types [--out FILE]
  TypeScript types of the tables and collections the user may read (stdout without --out)`;

export async function genCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CONNECTION_OPTIONS, out: { type: 'string' } },
  });
  if (positionals.length !== 1 || positionals[0] !== 'types')
    throw new CommandError(`usage: ${GEN_USAGE}`, 2);
  const options = clientOptions(values, io.env, { maxReconnectAttempts: 2, heartbeat: false });
  const client = await openClient(options);
  let text: string;
  try {
    const schema = await client.schema();
    text = generateTypes(schema, { source: `${client.session?.user ?? 'anyone'} on ${options.url}` });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    throw new CommandError(`cannot read the schema: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  } finally {
    await client.close();
  }
  if (values.out === undefined) io.stdout.write(text);
  else {
    await writeFile(values.out, text);
    io.stderr.write(`wrote ${values.out}\n`);
  }
  return 0;
}
