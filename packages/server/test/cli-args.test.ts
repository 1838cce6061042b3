/** parseArgs: the command, `--flag value`, `--flag=value`, bare and negated booleans, --config, other options. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../src/cli/args.ts';
import { loadConfig } from '../src/config/config.ts';

test('--port 9 and --port=9 set the port', () => {
  for (const argv of [
    ['serve', '--port', '9'],
    ['serve', '--port=9'],
  ]) {
    const parsed = parseArgs(argv);
    assert.equal(parsed.command, 'serve');
    assert.deepEqual(parsed.config, { port: '9' });
    assert.equal(loadConfig({ flags: parsed.config }).port, 9);
  }
});

test('dashes map to underscores in field names', () => {
  const parsed = parseArgs([
    'serve',
    '--data-dir',
    '/srv/db',
    '--rate-limit-rps=50',
    '--websocket-ping-interval',
    '2.5',
  ]);
  assert.deepEqual(parsed.config, {
    data_dir: '/srv/db',
    rate_limit_rps: '50',
    websocket_ping_interval: '2.5',
  });
});

test('--no-require-authentication sets it false; --enable-tls alone sets it true', () => {
  assert.deepEqual(parseArgs(['serve', '--no-require-authentication']).config, {
    require_authentication: false,
  });
  assert.deepEqual(parseArgs(['serve', '--enable-tls']).config, { enable_tls: true });
  // A bare boolean does not swallow the next argument unless it is a boolean word.
  const beforeCommand = parseArgs(['--enable-tls', 'serve']);
  assert.equal(beforeCommand.command, 'serve');
  assert.deepEqual(beforeCommand.config, { enable_tls: true });
  assert.deepEqual(parseArgs(['serve', '--enable-tls', 'false']).config, { enable_tls: 'false' });
  assert.deepEqual(parseArgs(['serve', '--require-authentication=off']).config, {
    require_authentication: 'off',
  });
  assert.equal(
    loadConfig({ flags: parseArgs(['serve', '--no-require-authentication']).config }).require_authentication,
    false,
  );
});

test('--config names the config file; other flags are options; extra words are positional', () => {
  const parsed = parseArgs([
    'query',
    'SELECT 1',
    '--config',
    '/etc/rustydb.json',
    '--format',
    'json',
    'more',
  ]);
  assert.equal(parsed.command, 'query');
  assert.deepEqual(parsed.positional, ['SELECT 1', 'more']);
  assert.equal(parsed.configFile, '/etc/rustydb.json');
  assert.deepEqual(parsed.options, { format: 'json' });
  assert.deepEqual(parsed.config, {});
});

test('a value flag at the end without a value throws naming the flag', () => {
  assert.throws(() => parseArgs(['serve', '--port']), /--port needs a value/);
});

test('no arguments: no command', () => {
  assert.deepEqual(parseArgs([]), {
    command: undefined,
    positional: [],
    config: {},
    options: {},
    configFile: undefined,
  });
});
