/**
 * Connects that arrive together. The gateway completes the upgrades of one event-loop turn together,
 * checking their URL tokens back to back first (websocket-gateway.ts #flush): each connect must still
 * get its own token's answer, read at that connect, and the admission counts must hold as for
 * connects one at a time. Every socket here is started in one tick, so that the server reads many
 * upgrades in one turn.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { sleep, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { TestClient, type CloseInfo, type ServerMsg } from '../helpers/ws-client.ts';
import { identityOf, nowSeconds, signToken } from '../helpers/tokens.ts';
import { createUser, within } from './helpers.ts';

let ts: TestServer;
before(async () => {
  // The defaults: max_unauthenticated_connections_per_ip (16) is under the number of connects below.
  ts = await startTestServer();
});
after(() => ts.close());

/** The first message and the close of a socket opened with `token` in the URL. */
interface Answer {
  first: ServerMsg;
  closed?: CloseInfo;
}

/**
 * Opens one socket per token and waits for each one's first message (and, when it is not auth_success,
 * its close). The TCP connections are made (and accepted) first and the upgrade requests all sent in
 * one tick, so that the server reads them in one turn: one batch.
 */
async function connectAll(server: TestServer, tokens: string[]): Promise<Answer[]> {
  const { hostname, port } = new URL(server.server.wsUrl);
  const connections = await Promise.all(
    tokens.map(
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = tcpConnect(Number(port), hostname);
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  // Until the server has accepted every connection and reads it (else it reads the requests as it accepts).
  await sleep(100);
  const clients = tokens.map((token, i) =>
    TestClient.adopt(
      new WebSocket(`${server.server.wsUrl}/api/v1/stream?token=${encodeURIComponent(token)}`, {
        createConnection: () => connections[i]!,
      }),
    ),
  );
  return Promise.all(
    clients.map(async (opening) => {
      const c = await opening;
      const first = await c.next(() => true, 5000);
      if (first.type === 'auth_success') {
        c.close();
        return { first };
      }
      return { first, closed: await c.closed() };
    }),
  );
}

test(
  'many connects at once, several users, more than the unauthenticated cap per address: each is its own user',
  { timeout: 20_000 },
  async () => {
    const users = ['batch_a', 'batch_b', 'batch_c', 'batch_d'];
    const tokens = new Map<string, string>();
    for (const name of users) tokens.set(name, await createUser(ts, name, ['readonly']));
    const cap = ts.server.config.max_unauthenticated_connections_per_ip;
    const names = Array.from({ length: 3 * cap }, (_, i) => users[i % users.length]!);
    const answers = await connectAll(
      ts,
      names.map((name) => tokens.get(name)!),
    );
    answers.forEach(({ first }, i) => {
      assert.equal(first.type, 'auth_success', `connect ${i}: ${JSON.stringify(first)}`);
      assert.equal(first.payload.user, names[i], `connect ${i} authenticated as another user`);
    });
    await within(3000, () => ts.server.gateway.connectionCount === 0);
    assert.equal(ts.server.gateway.unauthenticatedCount, 0);
  },
);

test(
  'a batch mixing revoked, expired, deleted-user and valid tokens refuses exactly the bad ones, each audited once',
  { timeout: 20_000 },
  async () => {
    const valid = await createUser(ts, 'mix_valid', ['readonly']);
    const revoked = await createUser(ts, 'mix_revoked', ['readonly']);
    assert.equal((await ts.http('/api/v1/auth/logout', { method: 'POST', token: revoked })).status, 200);
    const deleted = await createUser(ts, 'mix_deleted', ['readonly']);
    assert.equal((await ts.http('/api/v1/users/mix_deleted', { method: 'DELETE' })).status, 200);
    const expired = await signToken(ts.secret(), {
      sub: 'mix_valid',
      claims: identityOf(valid),
      iat: nowSeconds() - 120,
      exp: nowSeconds() - 60,
    });
    const kinds = [
      { token: valid, expect: 'ok' },
      { token: revoked, expect: 'AUTH_FAILED' },
      { token: valid, expect: 'ok' },
      { token: expired, expect: 'AUTH_EXPIRED' },
      { token: deleted, expect: 'AUTH_FAILED' },
    ] as const;
    // Fewer refused sockets than max_unauthenticated_connections_per_ip (16): a refused socket counts as
    // unauthenticated until its close handshake ends, so more would have the limit refuse valid ones.
    const mix = Array.from({ length: 3 }, () => kinds).flat();
    const auditBefore = auditFailures(ts).length;
    const answers = await connectAll(
      ts,
      mix.map((k) => k.token),
    );
    answers.forEach(({ first, closed }, i) => {
      const { expect } = mix[i]!;
      if (expect === 'ok') {
        assert.equal(first.type, 'auth_success', `connect ${i}: ${JSON.stringify(first)}`);
        assert.equal(first.payload.user, 'mix_valid');
        return;
      }
      assert.equal(first.type, 'auth_error', `connect ${i} (${expect}): ${JSON.stringify(first)}`);
      assert.equal(first.payload.code, expect, `connect ${i}`);
      assert.deepEqual(closed, {
        code: 1008,
        reason: expect === 'AUTH_EXPIRED' ? 'token expired' : 'authentication failed',
      });
    });
    // Each refused connect is audited once, with its own reason.
    const failures = await waitForAuditFailures(ts, auditBefore, mix.filter((k) => k.expect !== 'ok').length);
    const codes = failures.map((f) => f.details.code).sort();
    assert.deepEqual(codes, [...Array(6).fill('AUTH_FAILED'), ...Array(3).fill('AUTH_EXPIRED')].sort());
    await within(3000, () => ts.server.gateway.connectionCount === 0);
  },
);

test(
  'clients that close right after sending their upgrade leave nothing counted',
  { timeout: 20_000 },
  async () => {
    // Two connections per address: a count left behind by an aborted connect would refuse the next ones.
    const limited = await startTestServer({
      max_connections_per_ip: 2,
      max_unauthenticated_connections_per_ip: 2,
    });
    try {
      const { port } = new URL(limited.server.url);
      const request = (n: number): string =>
        `GET /api/v1/stream?token=${encodeURIComponent(limited.token)} HTTP/1.1\r\n` +
        `Host: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${Buffer.from(`aborted-connect${n}`.padEnd(16, '.')).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`;
      // Connected (and accepted) first, then each sends its upgrade and goes at once, all in one tick:
      // the server reads them in one turn, and queues them in one batch.
      const sockets = await Promise.all(
        Array.from(
          { length: 24 },
          () =>
            new Promise<Socket>((resolve, reject) => {
              const socket = tcpConnect(Number(port), '127.0.0.1');
              socket.once('connect', () => resolve(socket));
              socket.once('error', reject);
            }),
        ),
      );
      await sleep(100);
      const gone = sockets.map(
        (socket, n) =>
          new Promise<void>((resolve) => {
            socket.on('error', () => {
              // A reset from the server is expected: the client is gone.
            });
            // Read (and drop) whatever the server answers, to see its end.
            socket.resume();
            socket.once('close', () => resolve());
            socket.write(request(n));
            // Half of them end (FIN), half reset.
            if (n % 2 === 0) socket.end();
            else socket.resetAndDestroy();
          }),
      );
      await Promise.all(gone);
      await within(3000, () => limited.server.gateway.connectionCount === 0);
      assert.equal(limited.server.gateway.unauthenticatedCount, 0);
      assert.deepEqual(limited.server.gateway.connectionsByEndpoint(), {});
      // The address's two places are free.
      const answers = await connectAll(limited, [limited.token, limited.token]);
      for (const { first } of answers) assert.equal(first.type, 'auth_success', JSON.stringify(first));
    } finally {
      await limited.close();
    }
  },
);

interface AuditFailure {
  event: string;
  details: { code: string };
}

function auditFailures(server: TestServer): AuditFailure[] {
  return readFileSync(join(server.dataDir, 'audit.log'), 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditFailure)
    .filter((entry) => entry.event === 'auth.failure');
}

async function waitForAuditFailures(server: TestServer, from: number, n: number): Promise<AuditFailure[]> {
  // The audit log is written asynchronously: wait for n more, then make sure no more follow.
  await within(3000, () => auditFailures(server).length >= from + n);
  await sleep(200);
  return auditFailures(server).slice(from);
}
