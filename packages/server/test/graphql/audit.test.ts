/**
 * graphql-http's own GraphQL-over-HTTP audit suite (`serverAudits`) against the real server's
 * `/graphql`, authenticated with a bearer token through the suite's fetchFn hook. Every audit must pass:
 * MUST and SHOULD ones as the brief requires, and the MAY ones too (the server does all of them).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

let ts: TestServer;

before(async () => {
  ts = await startTestServer();
});

after(async () => {
  await ts.close();
});

/** fetch with the admin token added, as a client of an authenticated server would send it. */
const authedFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${ts.token}`);
  return fetch(input, { ...init, headers, signal: AbortSignal.timeout(10_000) });
};

describe('graphql-http server audits', () => {
  // The list is fixed by graphql-http; the URL is read when each audit runs (the server starts in before()).
  for (const audit of serverAudits({ url: () => `${ts.server.url}/graphql`, fetchFn: authedFetch })) {
    test(audit.name, async () => {
      const result = await audit.fn();
      assert.equal(
        result.status,
        'ok',
        `${audit.id} ${audit.name}: ${'reason' in result ? result.reason : ''}`,
      );
    });
  }
});

test('without a token the server answers 401, as the GraphQL-over-HTTP spec suggests for an unpermitted request', async () => {
  const res = await fetch(`${ts.server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  assert.equal(res.status, 401);
  const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
  assert.equal(body.errors[0]!.extensions.code, 'AUTH_REQUIRED');
});
