/**
 * RustyDB from Node with @rustydb/client: log in, query, stream a large result, subscribe to a table,
 * and resume the subscription from a saved position without missing a change.
 *
 *   RUSTYDB_URL=http://127.0.0.1:8080 RUSTYDB_USER=admin RUSTYDB_PASSWORD=… node --import tsx examples/node-client.ts
 *
 * (A subscription also resumes by itself after a lost connection; saving `lastSequence` is how a
 * program picks up where it left off after it was stopped.)
 */
import { connect, type TableChangeEvent, type TableSubscription } from '@rustydb/client';

const url = process.env.RUSTYDB_URL ?? 'http://127.0.0.1:8080';
const username = process.env.RUSTYDB_USER ?? 'admin';
const password = process.env.RUSTYDB_PASSWORD;
if (!password) {
  console.error('set RUSTYDB_PASSWORD');
  process.exit(2);
}

/** The next `n` row changes of a subscription. */
async function nextChanges(subscription: TableSubscription, n: number): Promise<TableChangeEvent[]> {
  const changes: TableChangeEvent[] = [];
  for await (const event of subscription) {
    if (event.type === 'change') changes.push(event);
    if (changes.length === n) break;
  }
  return changes;
}

const client = await connect({ url, username, password });
try {
  console.log(`login: connected as ${client.session?.user}`);

  // A query: the whole result at once.
  await client.query('CREATE TABLE IF NOT EXISTS example_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const answer = await client.query<{ answer: number; greeting: string }>(
    'SELECT 6 * 7 AS answer, ? AS greeting',
    ['hello'],
  );
  console.log(`query: answer=${answer.rows[0]?.answer} greeting=${answer.rows[0]?.greeting}`);

  // A stream: chunks as they come; breaking out early would cancel the query on the server.
  let rows = 0;
  let chunks = 0;
  for await (const chunk of client.stream(
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) SELECT x FROM c',
    [],
    { chunkSize: 1000 },
  )) {
    rows += chunk.rows.length;
    chunks++;
  }
  console.log(`stream: ${rows} rows in ${chunks} chunks`);

  // A subscription: every change to the table, in order.
  const subscription = client.subscribe('example_notes');
  await subscription.ready();
  await client.query('INSERT INTO example_notes (body) VALUES (?)', ['first']);
  const [first] = await nextChanges(subscription, 1);
  console.log(`subscribe: #${first?.sequence} ${first?.op} ${JSON.stringify(first?.row)}`);
  const saved = subscription.lastSequence!;
  await subscription.unsubscribe();

  // Changes made while nobody listens…
  await client.batch([
    { sql: 'INSERT INTO example_notes (body) VALUES (?)', params: ['second'] },
    { sql: 'INSERT INTO example_notes (body) VALUES (?)', params: ['third'] },
  ]);

  // …are delivered when the subscription resumes from the saved sequence.
  const resumed = client.subscribe('example_notes', { since: saved });
  const missed = await nextChanges(resumed, 2);
  const bodies = missed.map((c) => c.row?.body);
  const consecutive = missed.every(
    (c, i) => c.sequence > saved && (i === 0 || c.sequence > missed[i - 1]!.sequence),
  );
  console.log(
    `resume: after #${saved} got ${JSON.stringify(bodies)}${consecutive ? ', in order, nothing missed' : ''}`,
  );
} finally {
  await client.close();
}
