/** loadConfig: defaults < file < RUSTYDB_* environment < flags (< overrides), validation naming the field, redaction. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FIELDS, ConfigError, describeConfig, loadConfig } from '../src/config/config.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rustydb-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function expectConfigError(fn: () => unknown, field: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, new RegExp(`^invalid configuration: ${field}: `));
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('defaults match the guide', () => {
  const config = loadConfig();
  assert.equal(config.port, 8080);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.websocket_max_connections, 1000);
  assert.equal(config.websocket_max_message_size, 1024 * 1024);
  assert.equal(config.websocket_ping_interval, 30);
  assert.equal(config.websocket_timeout, 60);
  assert.equal(config.require_authentication, true);
  assert.equal(config.enable_rate_limiting, true);
  assert.equal(config.rate_limit_rps, 100);
  assert.equal(config.enable_tls, false);
  assert.equal(config.admin_password, undefined);
  assert.equal(config.jwt_secret, undefined);
});

test('precedence: defaults < file < environment < flags < overrides', () => {
  const file = configFile('precedence.json', {
    port: 1111,
    host: '0.0.0.0',
    rate_limit_rps: 5,
    query_chunk_size: 7,
    websocket_timeout: 9,
  });
  const config = loadConfig({
    file,
    env: { RUSTYDB_PORT: '2222', RUSTYDB_RATE_LIMIT_RPS: '6', RUSTYDB_WEBSOCKET_TIMEOUT: '10' },
    flags: { port: '3333', websocket_timeout: '11' },
    overrides: { websocket_timeout: 12 },
  });
  assert.equal(config.port, 3333); // flag beats env and file
  assert.equal(config.rate_limit_rps, 6); // env beats file
  assert.equal(config.host, '0.0.0.0'); // file beats default
  assert.equal(config.query_chunk_size, 7); // file only
  assert.equal(config.websocket_timeout, 12); // overrides beat flags
  assert.equal(config.websocket_max_connections, 1000); // default
});

test('the config file may come from RUSTYDB_CONFIG; an empty environment value is ignored', () => {
  const file = configFile('from-env.json', { port: 4444, rate_limit_rps: 3 });
  const config = loadConfig({ env: { RUSTYDB_CONFIG: file, RUSTYDB_RATE_LIMIT_RPS: '' } });
  assert.equal(config.port, 4444);
  assert.equal(config.rate_limit_rps, 3);
});

test('values are coerced by kind: ints, numbers, booleans', () => {
  const config = loadConfig({
    env: {
      RUSTYDB_PORT: '9000',
      RUSTYDB_STATEMENT_TIMEOUT: '0.25',
      RUSTYDB_REQUIRE_AUTHENTICATION: 'false',
      RUSTYDB_ENABLE_RATE_LIMITING: 'off',
    },
    flags: { websocket_ping_interval: '1.5' },
  });
  assert.equal(config.port, 9000);
  assert.equal(config.statement_timeout, 0.25);
  assert.equal(config.require_authentication, false);
  assert.equal(config.enable_rate_limiting, false);
  assert.equal(config.websocket_ping_interval, 1.5);
  for (const [raw, value] of [
    ['true', true],
    ['1', true],
    ['yes', true],
    ['ON', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ] as const) {
    assert.equal(
      loadConfig({ env: { RUSTYDB_REQUIRE_AUTHENTICATION: raw } }).require_authentication,
      value,
      raw,
    );
  }
});

test('invalid values throw ConfigError naming the field and the source', () => {
  expectConfigError(() => loadConfig({ env: { RUSTYDB_PORT: 'abc' } }), 'port', /RUSTYDB_PORT/);
  expectConfigError(() => loadConfig({ env: { RUSTYDB_PORT: '70000' } }), 'port', /at most 65535/);
  expectConfigError(() => loadConfig({ flags: { port: '-1' } }), 'port', /--port/);
  expectConfigError(() => loadConfig({ env: { RUSTYDB_TOKEN_TTL: '1.5' } }), 'token_ttl', /whole number/);
  expectConfigError(
    () => loadConfig({ env: { RUSTYDB_RATE_LIMIT_RPS: '0' } }),
    'rate_limit_rps',
    /at least 1/,
  );
  expectConfigError(
    () => loadConfig({ env: { RUSTYDB_REQUIRE_AUTHENTICATION: 'maybe' } }),
    'require_authentication',
  );
  expectConfigError(() => loadConfig({ flags: { websocket_timeout: 'soon' } }), 'websocket_timeout');
  expectConfigError(() => loadConfig({ overrides: { host: '' } }), 'host');
  expectConfigError(
    () => loadConfig({ file: configFile('bad-port.json', { port: 'x' }) }),
    'port',
    /config file/,
  );
});

test('unknown fields, unreadable and malformed config files are ConfigErrors', () => {
  expectConfigError(() => loadConfig({ file: configFile('unknown.json', { prot: 80 }) }), 'prot');
  expectConfigError(
    () => loadConfig({ file: configFile('broken.json', '{"port": ') }),
    'config',
    /not valid JSON/,
  );
  expectConfigError(() => loadConfig({ file: configFile('array.json', [1]) }), 'config', /JSON object/);
  expectConfigError(() => loadConfig({ file: join(dir, 'does-not-exist.json') }), 'config', /cannot read/);
  expectConfigError(() => loadConfig({ flags: { no_such_flag: '1' } as never }), 'no_such_flag');
});

test('enable_tls needs both tls_cert_path and tls_key_path', () => {
  expectConfigError(() => loadConfig({ flags: { enable_tls: true } }), 'enable_tls');
  expectConfigError(() => loadConfig({ flags: { enable_tls: true, tls_cert_path: '/c.pem' } }), 'enable_tls');
  const ok = loadConfig({ flags: { enable_tls: true, tls_cert_path: '/c.pem', tls_key_path: '/k.pem' } });
  assert.equal(ok.enable_tls, true);
});

test('log_level is one of debug, info, warn, error', () => {
  assert.equal(loadConfig({ flags: { log_level: 'debug' } }).log_level, 'debug');
  assert.throws(
    () => loadConfig({ env: { RUSTYDB_LOG_LEVEL: 'verbose' } }),
    (err: unknown) =>
      err instanceof ConfigError && err.field === 'log_level' && /debug, info, warn, error/.test(err.message),
  );
});

test('durability is full unless normal is chosen, from the file, RUSTYDB_DURABILITY or --durability', () => {
  assert.equal(loadConfig().durability, 'full');
  const file = configFile('durability.json', { durability: 'normal' });
  assert.equal(loadConfig({ file }).durability, 'normal');
  assert.equal(loadConfig({ env: { RUSTYDB_DURABILITY: 'normal' } }).durability, 'normal');
  assert.equal(
    loadConfig({ file, env: { RUSTYDB_DURABILITY: 'normal' }, flags: { durability: 'full' } }).durability,
    'full',
  );
  for (const wrong of ['off', 'FULL', 'fast', 'extra']) {
    expectConfigError(
      () => loadConfig({ env: { RUSTYDB_DURABILITY: wrong } }),
      'durability',
      /expected one of full, normal/,
    );
  }
  expectConfigError(() => loadConfig({ flags: { durability: '' } }), 'durability', /non-empty string/);
});

test('durability normal is refused with engine postgres, whose commits are durable by its own settings', () => {
  const postgres = { engine: 'postgres', database_url: 'postgres://u:p@localhost:5432/db' };
  assert.equal(loadConfig({ flags: postgres }).durability, 'full');
  expectConfigError(
    () => loadConfig({ flags: { ...postgres, durability: 'normal' } }),
    'durability',
    /only full .*synchronous_commit/,
  );
});

test('subscription_max_buffer must be below websocket_max_send_buffer', () => {
  const mib = 1024 * 1024;
  assert.throws(
    () => loadConfig({ overrides: { subscription_max_buffer: 4 * mib, websocket_max_send_buffer: 4 * mib } }),
    (err: unknown) => err instanceof ConfigError && err.field === 'subscription_max_buffer',
  );
  const config = loadConfig({
    overrides: { subscription_max_buffer: 2 * mib, websocket_max_send_buffer: 4 * mib },
  });
  assert.equal(config.websocket_max_send_buffer, 4 * mib);
});

test('describeConfig redacts admin_password and jwt_secret and shows every field', () => {
  const config = loadConfig({
    overrides: {
      admin_password: 'hunter2-password',
      jwt_secret: 'a-very-long-secret-value-of-more-than-32-bytes',
    },
  });
  const shown = describeConfig(config);
  assert.equal(shown.admin_password, '[redacted]');
  assert.equal(shown.jwt_secret, '[redacted]');
  assert.equal(shown.port, 8080);
  assert.equal(shown.tls_cert_path, null);
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(CONFIG_FIELDS).sort());
  const text = JSON.stringify(shown);
  assert.doesNotMatch(text, /hunter2/);
  assert.doesNotMatch(text, /a-very-long-secret/);
  // Unset secrets are shown as unset, not as redacted values.
  const plain = describeConfig(loadConfig());
  assert.equal(plain.admin_password, null);
  assert.equal(plain.jwt_secret, null);
});
