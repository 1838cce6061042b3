/**
 * Server configuration: defaults < config file < environment (`RUSTYDB_<FIELD>`) < command-line flags
 * (`--field-name`). Every field is validated; an invalid value stops start-up naming the field.
 */
import { readFileSync } from 'node:fs';
import { LOG_LEVELS, isLogLevel } from '../core/logger.ts';

type FieldKind = 'string' | 'int' | 'bool' | 'number';

interface FieldSpec {
  kind: FieldKind;
  default: string | number | boolean | undefined;
  min?: number;
  max?: number;
  secret?: boolean;
  help: string;
}

export const CONFIG_FIELDS = {
  host: { kind: 'string', default: '127.0.0.1', help: 'address to listen on' },
  port: { kind: 'int', default: 8080, min: 0, max: 65535, help: 'TCP port (0 picks a free one)' },
  data_dir: { kind: 'string', default: './data', help: 'directory holding the database and secrets' },
  allow_insecure_data_dir: {
    kind: 'bool',
    default: false,
    help: 'start even when other users can read or enter data_dir (its files are still made 0600)',
  },
  engine: {
    kind: 'string',
    default: 'sqlite',
    help: 'storage engine: sqlite (embedded, one node) or postgres (database_url; several nodes)',
  },
  database_url: {
    kind: 'string',
    default: undefined,
    secret: true,
    help: 'PostgreSQL connection URL (with engine postgres), e.g. postgres://rustydb:PASSWORD@db:5432/rustydb',
  },
  admin_password: {
    kind: 'string',
    default: undefined,
    secret: true,
    help: 'password of the admin user created on first start',
  },
  jwt_secret: {
    kind: 'string',
    default: undefined,
    secret: true,
    help: 'HS256 signing secret (default: generated once and kept in the data dir)',
  },
  token_ttl: { kind: 'int', default: 86_400, min: 1, max: 31_536_000, help: 'token lifetime, seconds' },
  websocket_max_connections: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    help: 'open sockets at most',
  },
  websocket_max_message_size: {
    kind: 'int',
    default: 1024 * 1024,
    min: 64,
    max: 256 * 1024 * 1024,
    help: 'largest client message, bytes (after decompression)',
  },
  websocket_max_send_buffer: {
    kind: 'int',
    default: 16 * 1024 * 1024,
    min: 2 * 1024 * 1024,
    max: 1024 * 1024 * 1024,
    help: 'bytes that may wait to be sent on one socket; a client further behind is closed with 4013',
  },
  websocket_ping_interval: {
    kind: 'number',
    default: 30,
    min: 0.05,
    max: 86_400,
    help: 'server ping period, seconds',
  },
  websocket_timeout: {
    kind: 'number',
    default: 60,
    min: 0.1,
    max: 86_400,
    help: 'a peer silent this long is dropped, seconds',
  },
  require_authentication: { kind: 'bool', default: true, help: 'demand a token before any other message' },
  enable_rate_limiting: { kind: 'bool', default: true, help: 'limit messages per connection' },
  rate_limit_rps: {
    kind: 'int',
    default: 100,
    min: 1,
    max: 1_000_000,
    help: 'messages per second per connection',
  },
  rate_limit_burst: {
    kind: 'int',
    default: undefined,
    min: 1,
    max: 1_000_000,
    help: 'messages a connection may send at once above the steady rate (default: rate_limit_rps)',
  },
  rate_limit_max_violations: {
    kind: 'int',
    default: undefined,
    min: 1,
    max: 100_000_000,
    help: 'refused messages within rate_limit_violation_window that close the connection (default: 50 x rate_limit_rps)',
  },
  rate_limit_violation_window: {
    kind: 'number',
    default: 10,
    min: 0.1,
    max: 86_400,
    help: 'seconds over which refused messages are counted',
  },
  websocket_auth_timeout: {
    kind: 'number',
    default: 10,
    min: 0.05,
    max: 3600,
    help: 'seconds a new WebSocket has to authenticate (at most half of websocket_timeout)',
  },
  max_connections_per_ip: {
    kind: 'int',
    default: 100,
    min: 0,
    max: 1_000_000,
    help: 'WebSocket connections from one address (IPv6: one /64) at once (0: no limit beyond websocket_max_connections)',
  },
  max_unauthenticated_connections: {
    kind: 'int',
    default: 256,
    min: 0,
    max: 1_000_000,
    help: 'WebSocket connections not yet authenticated, all addresses together (0: no limit of its own)',
  },
  max_unauthenticated_connections_per_ip: {
    kind: 'int',
    default: 16,
    min: 0,
    max: 1_000_000,
    help: 'WebSocket connections not yet authenticated from one address (IPv6: one /64) (0: no limit of its own)',
  },
  max_connections_per_user: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    help: 'authenticated WebSocket connections of one user at once (0: no limit)',
  },
  max_subscriptions_per_connection: {
    kind: 'int',
    default: 100,
    min: 0,
    max: 1_000_000,
    help: 'subscriptions, live queries, change streams and GraphQL operations one connection may hold at once (0: no limit)',
  },
  login_max_attempts: {
    kind: 'int',
    default: 5,
    min: 1,
    max: 1_000_000,
    help: 'failed logins per username and address before each further attempt must wait',
  },
  login_backoff_base: {
    kind: 'number',
    default: 1,
    min: 0.001,
    max: 86_400,
    help: 'seconds of the first wait after login_max_attempts failures; doubles with each further failure',
  },
  login_backoff_max: {
    kind: 'number',
    default: 900,
    min: 0.001,
    max: 86_400,
    help: 'longest wait between login attempts, seconds',
  },
  allow_url_token: {
    kind: 'bool',
    default: true,
    help: 'accept a token in the WebSocket URL (?token=); off: only the auth message',
  },
  audit_log: {
    kind: 'bool',
    default: true,
    help: 'append security events to <data_dir>/audit.log',
  },
  jwks_url: {
    kind: 'string',
    default: undefined,
    help: 'JWKS of an external identity provider: its RS256/ES256 tokens are accepted too',
  },
  jwks_issuer: {
    kind: 'string',
    default: undefined,
    help: 'required `iss` of external tokens (with jwks_url)',
  },
  jwks_audience: {
    kind: 'string',
    default: undefined,
    help: 'required `aud` of external tokens (with jwks_url)',
  },
  jwks_user_claim: { kind: 'string', default: 'sub', help: 'claim of an external token naming the user' },
  jwks_roles_claim: {
    kind: 'string',
    default: 'roles',
    help: 'claim of an external token listing its groups or roles',
  },
  jwks_role_map: {
    kind: 'string',
    default: undefined,
    help: 'JSON object mapping values of jwks_roles_claim to RustyDB roles (default: taken as role names)',
  },
  allowed_origins: {
    kind: 'string',
    default: undefined,
    help: "browser origins allowed besides the server's own and loopback ones, comma-separated (*: any)",
  },
  enable_tls: { kind: 'bool', default: false, help: 'serve https and wss' },
  tls_cert_path: { kind: 'string', default: undefined, help: 'PEM certificate (with enable_tls)' },
  tls_key_path: { kind: 'string', default: undefined, help: 'PEM private key (with enable_tls)' },
  enable_console: { kind: 'bool', default: true, help: 'serve the web console at /' },
  statement_timeout: {
    kind: 'number',
    default: 30,
    min: 0.01,
    max: 86_400,
    help: 'a statement running longer is interrupted, seconds',
  },
  query_chunk_size: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 100_000,
    help: 'rows per streamed data message',
  },
  durability: {
    kind: 'string',
    default: 'full',
    help: 'full: an acknowledged commit survives a power loss; normal (SQLite only): it survives a crash of the server process, a power loss may undo the last commits',
  },
  engine_pool_size: {
    kind: 'int',
    default: 4,
    min: 1,
    max: 64,
    help: 'database connections for long statements and transactions',
  },
  storage_reserve: {
    kind: 'int',
    default: 16 * 1024 * 1024,
    min: 0,
    max: 1024 * 1024 * 1024,
    help: 'bytes of disk kept in reserve (SQLite) so that deletes can still commit when the disk is full; 0: none',
  },
  changelog_retention: {
    kind: 'number',
    default: 604_800,
    min: 1,
    max: 31_536_000,
    help: 'change-log entries older than this are pruned, seconds (resume window)',
  },
  changelog_max_entries: {
    kind: 'int',
    default: 1_000_000,
    min: 100,
    max: 1_000_000_000,
    help: 'change-log entries kept at most (resume window)',
  },
  subscription_max_buffer: {
    kind: 'int',
    default: 8 * 1024 * 1024,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    help: 'unsent bytes a subscriber may fall behind before its subscription ends with SLOW_CONSUMER',
  },
  graphql_max_depth: {
    kind: 'int',
    default: 10,
    min: 1,
    max: 1000,
    help: 'deepest nesting of fields a GraphQL operation may have',
  },
  graphql_max_complexity: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 100_000_000,
    help: 'largest estimated cost of a GraphQL operation (fields, times list sizes)',
  },
  graphql_introspection: {
    kind: 'bool',
    default: true,
    help: 'answer GraphQL introspection (__schema, __type); off: refused',
  },
  log_level: {
    kind: 'string',
    default: 'info',
    help: 'least severe log lines written: debug, info, warn or error',
  },
  metrics_public: {
    kind: 'bool',
    default: false,
    help: 'serve Prometheus /metrics without a token; off: a MONITOR token is required',
  },
} as const satisfies Record<string, FieldSpec>;

export type ConfigField = keyof typeof CONFIG_FIELDS;

type ValueOf<F extends FieldSpec> = F['kind'] extends 'bool'
  ? boolean
  : F['kind'] extends 'string'
    ? string
    : number;

export type ServerConfig = {
  -readonly [K in ConfigField]: (typeof CONFIG_FIELDS)[K]['default'] extends undefined
    ? ValueOf<(typeof CONFIG_FIELDS)[K]> | undefined
    : ValueOf<(typeof CONFIG_FIELDS)[K]>;
};

/**
 * What an acknowledged commit survives. `full`: a power loss or an operating-system crash as well
 * (SQLite flushes its write-ahead log to the disk at every commit, synchronous = FULL). `normal`: a
 * crash of the server process; a power loss may undo the last commits (synchronous = NORMAL).
 */
export const DURABILITIES = ['full', 'normal'] as const;
export type Durability = (typeof DURABILITIES)[number];

export function isDurability(value: unknown): value is Durability {
  return (DURABILITIES as readonly unknown[]).includes(value);
}

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`invalid configuration: ${field}: ${message}`);
  }
}

const fieldNames = Object.keys(CONFIG_FIELDS) as ConfigField[];

export function envName(field: ConfigField): string {
  return `RUSTYDB_${field.toUpperCase()}`;
}

export function flagName(field: ConfigField): string {
  return `--${field.replaceAll('_', '-')}`;
}

function coerce(field: ConfigField, raw: unknown, source: string): string | number | boolean {
  const spec: FieldSpec = CONFIG_FIELDS[field];
  const fail = (why: string): never => {
    throw new ConfigError(field, `${why} (from ${source})`);
  };
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) fail('expected a non-empty string');
      return raw as string;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw)) return false;
      return fail(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'int':
    case 'number': {
      const n =
        typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) fail(`expected a number, got ${JSON.stringify(raw)}`);
      if (spec.kind === 'int' && !Number.isInteger(n)) fail(`expected a whole number, got ${n}`);
      if (spec.min !== undefined && n < spec.min) fail(`must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) fail(`must be at most ${spec.max}, got ${n}`);
      return n;
    }
  }
}

export interface ConfigSources {
  /** Parsed command-line flags, by field. */
  flags?: Partial<Record<ConfigField, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file; also taken from `RUSTYDB_CONFIG`. */
  file?: string;
  /** Values set by code (tests, embedding); applied last. */
  overrides?: Partial<ServerConfig>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('config', `${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('config', `${path} must hold a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!Object.hasOwn(CONFIG_FIELDS, key)) throw new ConfigError(key, `unknown field in ${path}`);
  }
  return parsed as Record<string, unknown>;
}

export function loadConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? {};
  const config: Record<string, unknown> = {};
  for (const field of fieldNames) config[field] = CONFIG_FIELDS[field].default;

  const filePath = sources.file ?? env.RUSTYDB_CONFIG;
  if (filePath) {
    const file = readConfigFile(filePath);
    for (const [key, raw] of Object.entries(file)) {
      config[key] = coerce(key as ConfigField, raw, `config file ${filePath}`);
    }
  }
  for (const field of fieldNames) {
    const raw = env[envName(field)];
    if (raw !== undefined && raw !== '') config[field] = coerce(field, raw, envName(field));
  }
  for (const [key, raw] of Object.entries(sources.flags ?? {})) {
    if (!Object.hasOwn(CONFIG_FIELDS, key)) throw new ConfigError(key, 'unknown flag');
    if (raw !== undefined) config[key] = coerce(key as ConfigField, raw, flagName(key as ConfigField));
  }
  for (const [key, raw] of Object.entries(sources.overrides ?? {})) {
    if (!Object.hasOwn(CONFIG_FIELDS, key)) throw new ConfigError(key, 'unknown field');
    if (raw !== undefined) config[key] = coerce(key as ConfigField, raw, 'overrides');
  }

  const result = config as ServerConfig;
  if (result.engine !== 'sqlite' && result.engine !== 'postgres') {
    throw new ConfigError('engine', `must be sqlite or postgres, got ${JSON.stringify(result.engine)}`);
  }
  if (result.engine === 'postgres') {
    if (result.database_url === undefined)
      throw new ConfigError('database_url', 'is required with engine postgres');
    let url: URL;
    try {
      url = new URL(result.database_url);
    } catch {
      throw new ConfigError('database_url', 'not a URL (postgres://user:password@host:port/database)');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new ConfigError('database_url', 'must be a postgres:// or postgresql:// URL');
    }
  } else if (result.database_url !== undefined) {
    throw new ConfigError('database_url', 'is only used with engine postgres');
  }
  if (!isDurability(result.durability)) {
    throw new ConfigError(
      'durability',
      `expected one of ${DURABILITIES.join(', ')}, got ${JSON.stringify(result.durability)}`,
    );
  }
  // PostgreSQL's commits are durable by its own settings; the change capture needs them flushed
  // at once (see engine/postgres/change-log.ts), so the server offers no faster value there.
  if (result.engine === 'postgres' && result.durability !== 'full') {
    throw new ConfigError(
      'durability',
      "only full is offered with engine postgres: commit durability is PostgreSQL's own (synchronous_commit)",
    );
  }
  if (result.enable_tls && (!result.tls_cert_path || !result.tls_key_path)) {
    throw new ConfigError('enable_tls', 'needs both tls_cert_path and tls_key_path');
  }
  if (result.jwks_url !== undefined) {
    let url: URL;
    try {
      url = new URL(result.jwks_url);
    } catch {
      throw new ConfigError('jwks_url', `not a URL: ${result.jwks_url}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new ConfigError('jwks_url', 'must be an http(s) URL');
    // Without them, any token the provider ever signed for any application would be accepted.
    if (!result.jwks_issuer || !result.jwks_audience) {
      throw new ConfigError('jwks_url', 'needs both jwks_issuer and jwks_audience');
    }
  }
  if (result.jwks_role_map !== undefined) parseRoleMap(result.jwks_role_map);
  if (result.allowed_origins !== undefined) parseAllowedOrigins(result.allowed_origins);
  if (!isLogLevel(result.log_level)) {
    throw new ConfigError('log_level', `expected one of ${LOG_LEVELS.join(', ')}, got ${result.log_level}`);
  }
  // A subscriber must be told SLOW_CONSUMER (and can resume) before its socket reaches the hard limit.
  if (result.subscription_max_buffer >= result.websocket_max_send_buffer) {
    throw new ConfigError(
      'subscription_max_buffer',
      `must be below websocket_max_send_buffer (${result.websocket_max_send_buffer})`,
    );
  }
  return result;
}

/**
 * How long a new WebSocket has to authenticate: websocket_auth_timeout, but never more than half of
 * websocket_timeout, so that the idle close (1001) never beats it to a client that is chatty but never
 * authenticates.
 */
export function authTimeoutMs(config: ServerConfig): number {
  return Math.min(config.websocket_auth_timeout, config.websocket_timeout / 2) * 1000;
}

/** `allowed_origins`: `*`, `null` (sandboxed pages, files) or `scheme://host[:port]`, comma-separated. */
export function parseAllowedOrigins(text: string): { any: boolean; origins: Set<string> } {
  const origins = new Set<string>();
  let any = false;
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry === '*') {
      any = true;
      continue;
    }
    if (entry === 'null') {
      origins.add('null');
      continue;
    }
    const origin = normalizeOrigin(entry);
    if (origin === undefined || !/^https?:\/\/[^/]+\/?$/i.test(entry)) {
      throw new ConfigError(
        'allowed_origins',
        `'${entry}' is not an origin: write scheme://host[:port] (http or https, no path), null, or *`,
      );
    }
    origins.add(origin);
  }
  return { any, origins };
}

/** `scheme://host[:port]` with the default port left out and the host lower-cased; undefined if not http(s). */
export function normalizeOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password) return undefined;
  // A name, an IPv4 address or a bracketed IPv6 one: no wildcards, which would match nothing.
  if (!/^(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(url.hostname)) return undefined;
  return url.origin;
}

/** `jwks_role_map`: an object whose values are a role name or a list of them. */
export function parseRoleMap(text: string): Map<string, string[]> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError('jwks_role_map', 'is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('jwks_role_map', 'must be a JSON object');
  }
  const map = new Map<string, string[]>();
  for (const [claim, roles] of Object.entries(value)) {
    const list = typeof roles === 'string' ? [roles] : roles;
    if (!Array.isArray(list) || !list.every((r) => typeof r === 'string' && r.length > 0)) {
      throw new ConfigError(
        'jwks_role_map',
        `the value for '${claim}' must be a role name or a list of them`,
      );
    }
    map.set(claim, list as string[]);
  }
  return map;
}

/** The configuration as printed at start-up: secrets replaced, unset fields shown as such. */
export function describeConfig(config: ServerConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const field of fieldNames) {
    const spec: FieldSpec = CONFIG_FIELDS[field];
    const value = config[field];
    shown[field] = spec.secret && value !== undefined ? '[redacted]' : (value ?? null);
  }
  return shown;
}
