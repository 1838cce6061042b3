/**
 * The `rustydb` dispatcher with the real command sets of both packages, in process: the help, and what
 * a user is told when the other package is not installed. (Running the other package's commands is
 * tested with real processes in cli.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runRustydb, type Companion } from '@rustydb/protocol/cli';
import { commandSet as clientCommands } from '@rustydb/client/cli';
import { commandSet as serverCommands } from '@rustydb/server/cli';

function capture(): {
  stdout: { write(t: string): boolean };
  stderr: { write(t: string): boolean };
  out: string[];
  err: string[];
} {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: { write: (t) => out.push(t) > 0 },
    stderr: { write: (t) => err.push(t) > 0 },
  };
}

const server: Companion = {
  packageName: '@rustydb/server',
  provides: 'The server and its administration (serve, user, role)',
  load: async () => serverCommands,
};
const absentServer: Companion = { ...server, load: async () => undefined };

test('help lists the commands of both packages, the client first', async () => {
  const io = capture();
  assert.equal(await runRustydb(['help'], clientCommands, server, io), 0);
  const help = io.out.join('');
  assert.ok(help.indexOf('\n  shell ') < help.indexOf('\n  serve '), help);
  assert.match(help, /--data-dir/);
  assert.doesNotMatch(help, /not installed/);
});

test('without the other package: its commands are unknown, and help says which package adds them', async () => {
  const io = capture();
  assert.equal(await runRustydb(['serve'], clientCommands, absentServer, io), 2);
  const message = io.err.join('');
  assert.match(message, /^rustydb: unknown command 'serve'/);
  assert.match(
    message,
    /\(serve, user, role\) come with @rustydb\/server, which is not installed here: npm install @rustydb\/server/,
  );
  const help = capture();
  assert.equal(await runRustydb(['--help'], clientCommands, absentServer, help), 0);
  assert.match(help.out.join(''), /npm install @rustydb\/server/);
  assert.doesNotMatch(help.out.join(''), /--data-dir/);
});
