/* global document, location, URLSearchParams */
// RustyDB from a web page, in plain JavaScript: log in, query, stream, subscribe, and resume a
// subscription from a saved sequence. The SDK comes from the client's browser build.
import { RustyDBClient } from '../../packages/client/dist/browser/index.js';

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};

async function nextChanges(subscription, n) {
  const changes = [];
  for await (const event of subscription) {
    if (event.type === 'change') changes.push(event);
    if (changes.length === n) break;
  }
  return changes;
}

async function demo(username, password) {
  // The page's own origin: the API is served beside it (a reverse proxy forwards /api/).
  const client = new RustyDBClient({ username, password });
  client.on('state', (state) => {
    document.getElementById('state').textContent = state;
  });
  try {
    const session = await client.ready();
    log(`login: connected as ${session.user}`);

    await client.query(
      'CREATE TABLE IF NOT EXISTS example_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)',
    );
    const answer = await client.query('SELECT 6 * 7 AS answer, ? AS greeting', ['hello']);
    log(`query: answer=${answer.rows[0].answer} greeting=${answer.rows[0].greeting}`);

    let rows = 0;
    let chunks = 0;
    const sql =
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) SELECT x FROM c';
    for await (const chunk of client.stream(sql, [], { chunkSize: 1000 })) {
      rows += chunk.rows.length;
      chunks++;
    }
    log(`stream: ${rows} rows in ${chunks} chunks`);

    const subscription = client.subscribe('example_notes');
    await subscription.ready();
    await client.query('INSERT INTO example_notes (body) VALUES (?)', ['first']);
    const [first] = await nextChanges(subscription, 1);
    log(`subscribe: #${first.sequence} ${first.op} ${JSON.stringify(first.row)}`);
    const saved = subscription.lastSequence;
    await subscription.unsubscribe();

    await client.batch([
      { sql: 'INSERT INTO example_notes (body) VALUES (?)', params: ['second'] },
      { sql: 'INSERT INTO example_notes (body) VALUES (?)', params: ['third'] },
    ]);
    const missed = await nextChanges(client.subscribe('example_notes', { since: saved }), 2);
    const inOrder = missed.every(
      (c, i) => c.sequence > saved && (i === 0 || c.sequence > missed[i - 1].sequence),
    );
    log(
      `resume: after #${saved} got ${JSON.stringify(missed.map((c) => c.row.body))}${inOrder ? ', in order, nothing missed' : ''}`,
    );
    log('done');
  } catch (err) {
    log(`error: ${err.code ?? ''} ${err.message}`);
  } finally {
    await client.close();
  }
}

const form = document.getElementById('login');
form.addEventListener('submit', (event) => {
  event.preventDefault();
  void demo(form.elements.user.value, form.elements.password.value);
});

// ?user=…&password=… runs the demo at once (used by the tests).
const params = new URLSearchParams(location.search);
if (params.has('password')) void demo(params.get('user') ?? 'admin', params.get('password'));
