/**
 * Protocol fuzzing against the real server. A seeded generator takes well-formed messages of every kind
 * the stream endpoint accepts (and the HTTP query and batch bodies), and mutates them: fields replaced by
 * values of other types, removed, added, deeply nested; ids reused; SQL that is valid, forbidden,
 * malformed or heavy; text cut short or with stray characters. Several sockets of a user who may write
 * one table and only read another send them for a bounded time. Every answer must be well formed, and
 * every error must carry a documented code (never INTERNAL_ERROR) and no stack trace; a socket may only
 * be closed with a documented close code; and afterwards the server still serves, the read-only table
 * and the users are as they were.
 *
 * A failure prints its seed: RUSTYDB_FUZZ_SEED=<seed> reruns the same cases (and RUSTYDB_FUZZ_MS a longer
 * run).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { CLOSE_CODES, isErrorCode } from '@rustydb/protocol';
import { sql, startTestServer, STREAM_PATH, type TestServer } from '../helpers/test-server.ts';
import { prng } from '../../../../bench/lib/prng.ts';
import { assertAlive, createRole, createUser, securityState } from '../security/helpers.ts';

const FUZZ_MS = Number(process.env.RUSTYDB_FUZZ_MS) || 8_000;
const SEED = Number(process.env.RUSTYDB_FUZZ_SEED) || Math.floor(Math.random() * 2 ** 31);
const SOCKETS = 4;
/** Messages a socket sends before it waits for a pong, so that nothing piles up without bound. */
const BURST = 20;

const STATEMENTS = [
  'SELECT * FROM fz',
  'SELECT id, v FROM fz WHERE id = ?',
  'INSERT INTO fz (id, v) VALUES (?, ?)',
  'INSERT OR REPLACE INTO fz (id, v) VALUES (?, ?)',
  'UPDATE fz SET v = ? WHERE id = ?',
  'DELETE FROM fz WHERE id = ?',
  'SELECT count(*), sum(v) FROM canary',
  'SELECT * FROM canary WHERE id > ?',
  'DELETE FROM canary',
  'UPDATE canary SET v = 0',
  'DROP TABLE canary',
  'INSERT INTO canary (id, v) VALUES (?, ?)',
  'SELECT * FROM _rustydb_users',
  'PRAGMA writable_schema = 1',
  "ATTACH DATABASE '/tmp/x.db' AS x",
  'SELECT 1; SELECT 2',
  'BEGIN',
  'COMMIT',
  'SELECT ?',
  '?',
  'SELECT load_extension(?)',
  "SELECT readfile('/etc/passwd')",
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c',
  'SELECT zeroblob(100000)',
  'SELECT * FROM fz, fz AS b, fz AS c LIMIT 5000',
  'SELECT * FROM nope',
  'SELEC * FRM fz',
  "SELECT 'unterminated",
  'SELECT "ü", \'🙂\' FROM fz',
  'CREATE TABLE t (x)',
];

const KEYWORDS = [
  'SELECT',
  'FROM',
  'WHERE',
  'fz',
  'canary',
  '(',
  ')',
  '*',
  '?',
  ',',
  "'",
  '"',
  ';',
  '--',
  '/*',
  'NULL',
  '1e999',
  'x',
];

/**
 * The kinds of message, weighted: a failed `auth` ends its socket (1008), so it comes seldom enough for
 * each socket to carry many cases first.
 */
const TYPES = [
  'auth',
  ...Array<string>(3).fill('query'),
  'batch',
  'batch',
  'ping',
  'cancel',
  'subscribe',
  'subscribe',
  'watch',
  'unsubscribe',
];
const AUTH_SHARE = 0.3;

class Cases {
  readonly #random: () => number;
  #ids = 0;

  constructor(seed: number) {
    this.#random = prng(seed);
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }

  id(): string {
    // Some ids come back: answers to the same id, cancels and unsubscribes of live requests.
    return this.chance(0.2) ? `m${this.int(Math.max(1, this.#ids))}` : `m${this.#ids++}`;
  }

  sqlText(): string {
    if (this.chance(0.8)) return this.pick(STATEMENTS);
    return Array.from({ length: 1 + this.int(8) }, () => this.pick(KEYWORDS)).join(' ');
  }

  /** A value of any JSON type, some of them odd (huge, negative, empty, nested, non-ASCII). */
  value(depth = 0): unknown {
    switch (this.int(depth > 3 ? 6 : 9)) {
      case 0:
        return this.pick([0, -1, 1, 2 ** 53, -(2 ** 63), 1e308, 0.5, -0.000001, 2147483648]);
      case 1:
        return this.int(100);
      case 2:
        return this.pick(['', 'x', 'fz', 'canary', '\u0000', '\ud800', '🙂', 'a'.repeat(5000), '$base64']);
      case 3:
        return this.chance(0.5);
      case 4:
        return null;
      case 5:
        return this.sqlText();
      case 6:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      case 7:
        return this.chance(0.3) ? { $base64: this.pick(['', '!!!', 'AAAA', 'x'.repeat(9)]) } : {};
      default: {
        const object: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--)
          object[this.pick(['a', 'sql', 'id', 'eq', 'in', '__proto__', 'gt'])] = this.value(depth + 1);
        return object;
      }
    }
  }

  params(): unknown[] {
    return Array.from({ length: this.int(4) }, () => (this.chance(0.7) ? this.int(50) : this.value(2)));
  }

  /** A well-formed message of a random kind. */
  message(): Record<string, unknown> {
    let type = this.pick(TYPES);
    if (type === 'auth' && !this.chance(AUTH_SHARE)) type = 'ping';
    const id = this.id();
    switch (type) {
      case 'auth':
        return { type, id, payload: { token: this.pick(['x', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.']) } };
      case 'query':
        return {
          type,
          id,
          payload: {
            sql: this.sqlText(),
            params: this.params(),
            ...(this.chance(0.3) ? { streaming: true, chunk_size: 1 + this.int(100) } : {}),
          },
        };
      case 'batch':
        return {
          type,
          id,
          payload: {
            transaction: this.chance(0.5),
            queries: Array.from({ length: 1 + this.int(5) }, () => ({
              sql: this.sqlText(),
              params: this.params(),
            })),
          },
        };
      case 'cancel':
        return { type, id, payload: { id: `m${this.int(Math.max(1, this.#ids))}` } };
      case 'subscribe':
        return this.chance(0.5)
          ? {
              type,
              id,
              payload: {
                table: this.pick(['fz', 'canary', 'nope', '_rustydb_users']),
                ...(this.chance(0.3)
                  ? { filter: { v: this.chance(0.5) ? this.int(10) : { gt: this.int(10) } } }
                  : {}),
                ...(this.chance(0.3) ? { since: this.int(1000) } : {}),
                ...(this.chance(0.3) ? { snapshot: true } : {}),
              },
            }
          : { type, id, payload: { query: this.sqlText(), params: this.params() } };
      case 'watch':
        return {
          type,
          id,
          payload: { collection: this.pick(['docs', 'nope', 'canary']), fullDocument: 'updateLookup' },
        };
      case 'unsubscribe':
        return { type, id: `m${this.int(Math.max(1, this.#ids))}` };
      default:
        return { type: 'ping', id };
    }
  }

  /** Replaces, removes or adds something at a random place of `message`. */
  mutate(message: Record<string, unknown>): void {
    const containers: Record<string, unknown>[] = [];
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      containers.push(node as Record<string, unknown>);
      for (const child of Object.values(node)) walk(child);
    };
    walk(message);
    const target = this.pick(containers);
    const keys = Object.keys(target);
    const action = this.int(3);
    if (action === 0 && keys.length > 0) target[this.pick(keys)] = this.value();
    else if (action === 1 && keys.length > 0) delete target[this.pick(keys)];
    else target[this.pick(['type', 'payload', 'extra', 'sql', 'params', 'id', 'timestamp'])] = this.value();
  }

  /** The text of one case: mostly JSON of a (mutated) message, sometimes broken text. */
  text(): string {
    const message = this.message();
    if (this.chance(0.6)) for (let i = 1 + this.int(3); i > 0; i--) this.mutate(message);
    let text = JSON.stringify(message);
    if (this.chance(0.05)) text = text.slice(0, this.int(text.length));
    if (this.chance(0.05)) {
      const at = this.int(text.length);
      text = text.slice(0, at) + this.pick(['\u0000', '"', '{', '\\', '🙂', ']']) + text.slice(at);
    }
    if (this.chance(0.02)) text = `[${text}]`;
    return text;
  }
}

/** What went wrong, with the first examples of each kind. */
class Findings {
  readonly problems: string[] = [];
  sent = 0;
  answers = 0;
  errors = new Map<string, number>();
  closes = new Map<number, number>();

  problem(what: string): void {
    if (this.problems.length < 20) this.problems.push(what);
  }

  /** Checks one message from the server. */
  answer(data: WebSocket.RawData, sentLast: string): void {
    this.answers++;
    let message: { type?: unknown; payload?: { code?: unknown; message?: unknown } };
    try {
      message = JSON.parse(data.toString()) as typeof message;
    } catch {
      this.problem(`not JSON: ${data.toString().slice(0, 200)}`);
      return;
    }
    if (typeof message.type !== 'string') this.problem(`no type: ${JSON.stringify(message).slice(0, 200)}`);
    if (message.type !== 'error') return;
    const code = message.payload?.code;
    this.errors.set(String(code), (this.errors.get(String(code)) ?? 0) + 1);
    if (!isErrorCode(code) || code === 'INTERNAL_ERROR')
      this.problem(
        `error ${String(code)} after ${sentLast.slice(0, 300)}: ${JSON.stringify(message).slice(0, 300)}`,
      );
    if (typeof message.payload?.message !== 'string' || /\n\s+at /.test(message.payload.message))
      this.problem(`error message not a plain sentence: ${JSON.stringify(message).slice(0, 300)}`);
  }
}

let ts: TestServer;
let token: string;
let canaryBefore: unknown[][];
let stateBefore: unknown;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false, statement_timeout: 2 });
  await sql(ts, 'CREATE TABLE fz (id INTEGER PRIMARY KEY, v)');
  await sql(ts, 'CREATE TABLE canary (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)');
  await sql(ts, 'INSERT INTO canary (id, v) SELECT value, value * 7 FROM generate_series(1, 100)');
  canaryBefore = (await sql(ts, 'SELECT count(*), sum(v) FROM canary')).rows;
  await createRole(ts, 'fuzzer', [
    { privilege: 'SELECT', table: 'fz' },
    { privilege: 'INSERT', table: 'fz' },
    { privilege: 'UPDATE', table: 'fz' },
    { privilege: 'DELETE', table: 'fz' },
    { privilege: 'SELECT', table: 'canary' },
  ]);
  token = await createUser(ts, 'fuzz_user', ['fuzzer']);
  stateBefore = await securityState(ts);
});
after(() => ts.close());

/** One socket sending cases until `deadline`; a closed socket is replaced by a new one. */
async function fuzzSocket(cases: Cases, findings: Findings, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ws = new WebSocket(`${ts.server.wsUrl}${STREAM_PATH}?token=${encodeURIComponent(token)}`);
    let sentLast = '';
    let pong: (() => void) | undefined;
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('message', (data) => {
      findings.answer(data, sentLast);
      if (pong && data.toString().includes('"fuzz-pong"')) pong();
    });
    ws.on('error', () => {});
    const opened = await Promise.race([
      new Promise<boolean>((resolve) => ws.once('open', () => resolve(true))),
      closed.then(() => false),
    ]);
    if (!opened) {
      findings.problem('a new socket could not connect');
      return;
    }
    let open = true;
    let ending = false;
    void closed.then((code) => {
      open = false;
      pong?.();
      if (ending) return; // closed by this side
      findings.closes.set(code, (findings.closes.get(code) ?? 0) + 1);
      const documented = Object.values(CLOSE_CODES).some((c) => c.code === code);
      if (!documented || code === CLOSE_CODES.INTERNAL_ERROR.code)
        findings.problem(`closed with ${code} after ${sentLast.slice(0, 300)}`);
    });
    while (open && Date.now() < deadline) {
      for (let i = 0; i < BURST && open; i++) {
        sentLast = cases.text();
        ws.send(sentLast);
        findings.sent++;
      }
      if (!open) break;
      const answered = new Promise<void>((resolve) => (pong = resolve));
      ws.send(JSON.stringify({ type: 'ping', id: 'fuzz-pong' }));
      const late = setTimeout(() => pong?.(), 10_000);
      await answered;
      clearTimeout(late);
      pong = undefined;
    }
    ending = true;
    ws.terminate();
    await closed;
  }
}

/** HTTP bodies of /api/v1/query and /api/v1/batch, cut from the same cases. */
async function fuzzHttp(cases: Cases, findings: Findings, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const message = cases.chance(0.5)
      ? { type: 'query', payload: { sql: cases.sqlText(), params: cases.params() } }
      : cases.message();
    if (cases.chance(0.6)) cases.mutate(message);
    const path = message.type === 'batch' ? '/api/v1/batch' : '/api/v1/query';
    const rawBody = JSON.stringify(message.payload ?? cases.value());
    findings.sent++;
    const res = await ts.http(path, { token, rawBody });
    findings.answers++;
    const body = res.body as { error?: { code?: unknown; message?: unknown } } | string;
    if (typeof body === 'string') {
      findings.problem(`HTTP ${res.status} not JSON for ${rawBody.slice(0, 200)}: ${body.slice(0, 200)}`);
      continue;
    }
    if (res.status >= 400) {
      const code = body.error?.code;
      findings.errors.set(String(code), (findings.errors.get(String(code)) ?? 0) + 1);
      if (!isErrorCode(code) || code === 'INTERNAL_ERROR' || res.status >= 500)
        findings.problem(`HTTP ${res.status} ${String(code)} for ${path} ${rawBody.slice(0, 200)}`);
    }
  }
}

test(
  'fuzzed messages get documented answers, and the server and its data come through',
  { timeout: FUZZ_MS + 60_000 },
  async (t) => {
    const cases = new Cases(SEED);
    const findings = new Findings();
    const deadline = Date.now() + FUZZ_MS;
    await Promise.all([
      ...Array.from({ length: SOCKETS }, () => fuzzSocket(cases, findings, deadline)),
      fuzzHttp(cases, findings, deadline),
    ]);
    t.diagnostic(
      `seed ${SEED}: ${findings.sent} cases sent, ${findings.answers} messages back; errors ${JSON.stringify(Object.fromEntries(findings.errors))}; closes ${JSON.stringify(Object.fromEntries(findings.closes))}`,
    );
    assert.deepEqual(findings.problems, [], `seed ${SEED} (rerun with RUSTYDB_FUZZ_SEED=${SEED})`);
    // Enough cases to mean something, even on a busy machine.
    assert.ok(findings.sent >= 500, `only ${findings.sent} cases in ${FUZZ_MS} ms`);

    // The server still serves, and what the user could only read is untouched.
    await assertAlive(ts);
    assert.deepEqual((await sql(ts, 'SELECT count(*), sum(v) FROM canary')).rows, canaryBefore);
    assert.deepEqual(await securityState(ts), stateBefore);
  },
);
