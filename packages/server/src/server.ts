/**
 * Puts the server together: engine, users and tokens, the HTTP API and the WebSocket endpoints, and
 * an orderly shutdown (every socket gets 1001, then the engine closes).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { authTimeoutMs, type ServerConfig } from './config/config.ts';
import { openEngine } from './engine/open-engine.ts';
import { prepareDataDir, tightenDataFiles } from './config/data-dir.ts';
import { catalogScopedEngine } from './engine/sqlite/catalog-scope.ts';
import type { Engine } from './engine/engine.ts';
import { UserStore } from './auth/user-store.ts';
import { TokenService } from './auth/tokens.ts';
import { Authenticator } from './auth/authenticator.ts';
import { loadSharedSigningSecret, loadSigningSecret } from './auth/signing-secret.ts';
import { generatePassword } from './auth/passwords.ts';
import { consoleLogger, describeError, type Logger, type LogLevel } from './core/logger.ts';
import { RoleStore } from './auth/role-store.ts';
import { AccessControl } from './auth/access-control.ts';
import { PrivilegeHistory } from './auth/privilege-history.ts';
import { registerErrorHandling } from './http/http-helpers.ts';
import { registerCors } from './http/cors.ts';
import { OriginPolicy } from './auth/origin-policy.ts';
import { REVOKED_MESSAGE, registerAuthRoutes } from './http/auth-routes.ts';
import { registerSqlRoutes } from './http/sql-routes.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { registerAdminRoutes } from './http/admin-routes.ts';
import { registerSubscriptionRoutes } from './http/subscription-routes.ts';
import { registerSchemaRoutes } from './http/schema-routes.ts';
import { registerDocumentRoutes } from './http/document-routes.ts';
import { DocumentService } from './documents/document-service.ts';
import { ChangeFeed } from './changes/change-feed.ts';
import { SubscriptionHub } from './changes/subscription-hub.ts';
import { WebSocketGateway } from './ws/websocket-gateway.ts';
import { STREAM_PATH, sessionEndpoint, streamEndpoint } from './ws/stream-endpoint.ts';

/** Each collection's change-stream endpoint. */
const WATCH_PATH = /^\/api\/v1\/documents\/collections\/([A-Za-z][A-Za-z0-9_]{0,62})\/watch$/;
import { AuditLog } from './audit/audit-log.ts';
import { auditedEngine } from './audit/audited-engine.ts';
import { TokenRevocations } from './auth/token-revocations.ts';
import { ExternalIdentityProvider } from './auth/external-idp.ts';
import { LoginLimiter } from './auth/login-limiter.ts';
import { SessionRegistry } from './core/session-registry.ts';
import { NodeRelay } from './core/node-relay.ts';
import { registerSessionRoutes } from './http/session-routes.ts';
import { registerAuditRoutes } from './http/audit-routes.ts';
import { registerBackupRoutes } from './http/backup-routes.ts';
import { MetricsSampler } from './metrics/sampler.ts';
import { meteredEngine } from './metrics/metered-engine.ts';
import { PrometheusExporter } from './metrics/prometheus.ts';
import { METRICS_STREAM_PATH, metricsEndpoint } from './metrics/metrics-endpoint.ts';
import { registerMetricsRoutes } from './http/metrics-routes.ts';
import { LazyGraphQL } from './graphql/lazy-graphql.ts';
import { GRAPHQL_WS_PATH, INIT_TIMEOUT_CLOSE } from './graphql/endpoints.ts';
import { registerGraphQLHttp } from './graphql/http-endpoint.ts';
import { registerConsoleRoutes } from './http/console-routes.ts';
import { answerPlainHttpOnTlsPort } from './http/plain-http-on-tls.ts';

export interface StartOptions {
  logger?: Logger;
  /** Called once with the admin password when the admin user was created with a generated one. */
  onGeneratedAdminPassword?: (password: string) => void;
}

export interface RustyServer {
  readonly config: ServerConfig;
  readonly port: number;
  /** `http://host:port` (or https). */
  readonly url: string;
  /** Where the web console is (`url` + `/`), or undefined when `enable_console` is off. */
  readonly consoleUrl: string | undefined;
  /** `ws://host:port` (or wss). */
  readonly wsUrl: string;
  readonly engine: Engine;
  readonly users: UserStore;
  readonly roles: RoleStore;
  readonly access: AccessControl;
  readonly gateway: WebSocketGateway;
  readonly feed: ChangeFeed;
  readonly subscriptions: SubscriptionHub;
  readonly sessions: SessionRegistry;
  readonly audit: AuditLog;
  readonly metrics: MetricsSampler;
  /** The GraphQL layer, loaded at its first use. */
  readonly graphql: LazyGraphQL;
  close(): Promise<void>;
}

function readTlsFile(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(
      `invalid configuration: ${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** Loads the certificate and key and checks that they make a usable pair, naming the field at fault. */
function loadTls(config: ServerConfig): { cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' } {
  const cert = readTlsFile('tls_cert_path', config.tls_cert_path!);
  const key = readTlsFile('tls_key_path', config.tls_key_path!);
  try {
    createSecureContext({ cert });
  } catch (err) {
    throw new Error(
      `invalid configuration: tls_cert_path: ${config.tls_cert_path} is not a usable PEM certificate (${(err as Error).message})`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(
      `invalid configuration: tls_key_path: ${config.tls_key_path} is not a usable PEM private key for the certificate (${(err as Error).message})`,
    );
  }
  return { cert, key, minVersion: 'TLSv1.2' };
}

/**
 * HTTP requests in flight at shutdown get this long to finish (as WebSockets get to close); then every
 * connection left is closed. Without it the server waited for connections with nothing to finish: one
 * that never sent a request, or sent part of one (a client that gave up on it), holds the server's
 * close until its keep-alive timeout, 72 s.
 */
const HTTP_CLOSE_GRACE_MS = 2000;

async function closeHttp(app: FastifyInstance): Promise<void> {
  const grace = setTimeout(() => (app.server as HttpsServer).closeAllConnections(), HTTP_CLOSE_GRACE_MS);
  try {
    await app.close();
  } finally {
    clearTimeout(grace);
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** What an operator should know about a configuration before exposing it; logged as warnings at start. */
export function startupWarnings(config: ServerConfig): string[] {
  const warnings: string[] = [];
  const exposed = !LOOPBACK_HOSTS.has(config.host);
  if (exposed && !config.enable_tls) {
    warnings.push(
      `listening on ${config.host} without TLS: passwords and tokens cross the network in clear text; set enable_tls in production`,
    );
  }
  if (!config.require_authentication) {
    warnings.push(
      exposed
        ? `require_authentication is off while listening on ${config.host}: every client on the network acts as admin`
        : 'require_authentication is off: every client acts as admin',
    );
  }
  return warnings;
}

async function bootstrapAdmin(users: UserStore, config: ServerConfig, options: StartOptions): Promise<void> {
  if ((await users.count()) > 0) return;
  const password = config.admin_password ?? generatePassword();
  await users.create('admin', password, ['admin']);
  if (!config.admin_password) options.onGeneratedAdminPassword?.(password);
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RustyServer> {
  // log_level was checked when the configuration was loaded.
  const logger = options.logger ?? consoleLogger(config.log_level as LogLevel);
  const https = config.enable_tls ? loadTls(config) : undefined;

  // The data directory holds the token signing key and the audit log whatever the engine, and the
  // database itself with SQLite.
  prepareDataDir(config.data_dir, config.allow_insecure_data_dir, logger);
  const engine = await openEngine(config, {
    logger,
    onBackgroundError: (what, err) => logger.warn(`engine: ${what} failed`, describeError(err)),
    onStorageChange: (full) =>
      full
        ? logger.error('engine: the disk is full; writes are refused with STORAGE_FULL until space is freed')
        : logger.info('engine: the disk has room again; writes are accepted'),
  });
  // The database files were just created (or opened): readable by the server's user only from now on.
  tightenDataFiles(config.data_dir, logger);
  let app: FastifyInstance | undefined;
  let feed: ChangeFeed | undefined;
  let sampler: MetricsSampler | undefined;
  let graphql: LazyGraphQL | undefined;
  let relay: NodeRelay | undefined;
  const audit = new AuditLog(config.data_dir, logger, config.audit_log);
  try {
    const users = new UserStore(engine.internal);
    const roles = new RoleStore(engine.internal);
    const access = new AccessControl(users, roles);
    const syncPrivileges = engine.syncPrivileges?.bind(engine);
    if (syncPrivileges) access.syncWith(syncPrivileges);
    access.onDenied((principal, privilege) =>
      audit.record({ event: 'permission.denied', user: principal.user, details: { privilege } }),
    );
    const revocations = new TokenRevocations(engine.internal);
    // Nodes starting at once on one database take turns: one makes the tables, the admin and the secret.
    const exclusively = engine.exclusively?.bind(engine) ?? (<T>(work: () => Promise<T>) => work());
    const secret = await exclusively(async () => {
      await users.migrate();
      await roles.migrate();
      await bootstrapAdmin(users, config, options);
      await syncPrivileges?.();
      await revocations.migrate();
      // Nodes sharing a database share the secret through it, unless one is configured.
      return engine.name === 'postgres'
        ? await loadSharedSigningSecret(engine.internal, config.jwt_secret)
        : loadSigningSecret(config.data_dir, config.jwt_secret);
    });
    const tokens = new TokenService(secret, config.token_ttl);
    const idp = config.jwks_url !== undefined ? new ExternalIdentityProvider(config) : undefined;
    const authenticator = new Authenticator(users, tokens, revocations, audit, idp);
    const sessions = new SessionRegistry(config.max_connections_per_user);
    // Nodes sharing the database end each other's sessions and re-check each other's subscriptions.
    relay = engine.nodeEvents
      ? new NodeRelay({
          events: engine.nodeEvents,
          sessions,
          access,
          forgetPrivileges: () => engine.forgetPrivileges?.(),
          logger,
        })
      : undefined;
    const loginLimiter = new LoginLimiter({
      maxAttempts: config.login_max_attempts,
      baseBackoffMs: config.login_backoff_base * 1000,
      maxBackoffMs: config.login_backoff_max * 1000,
    });
    feed = await ChangeFeed.start(engine, logger, {
      maxAgeMs: config.changelog_retention * 1000,
      maxEntries: config.changelog_max_entries,
    });
    const hub = new SubscriptionHub(engine, feed, access, new PrivilegeHistory(users, roles), config, logger);
    const origins = new OriginPolicy({
      allowedOrigins: config.allowed_origins,
      host: config.host,
      requireAuthentication: config.require_authentication,
    });
    const gateway = new WebSocketGateway(config, logger, origins, audit);
    const changeFeed = feed;
    sampler = new MetricsSampler({
      connections: () => gateway.connectionsByEndpoint(),
      subscriptions: () => hub.count,
      changeLog: async () => ({ head: await engine.changes.head(), delivered: changeFeed.head }),
      databaseSize: () => engine.databaseSize(),
    });
    const deps = {
      // SQLite's catalog names every table: callers without ADMIN are served the part they may see.
      // SQLite's catalog is cut to what each caller may see by the server; PostgreSQL's by PostgreSQL.
      engine:
        engine.name === 'sqlite'
          ? catalogScopedEngine(meteredEngine(auditedEngine(engine, audit), sampler))
          : meteredEngine(auditedEngine(engine, audit), sampler),
      authenticator,
      access,
      config,
      logger,
      sessions,
      audit,
      subscriptions: hub,
      metrics: sampler,
    };
    for (const warning of startupWarnings(config)) logger.warn(warning);

    gateway.route(STREAM_PATH, streamEndpoint(deps));
    gateway.routePattern(
      WATCH_PATH,
      sessionEndpoint(deps, 'documents.watch', (pathname) => WATCH_PATH.exec(pathname)![1]!),
      '/api/v1/documents/collections/{name}/watch',
    );
    gateway.route(METRICS_STREAM_PATH, metricsEndpoint({ ...deps, sampler }));
    // GraphQL is loaded at its first request or upgrade (lazy-graphql.ts); the routes exist from now.
    const graphqlWs = gateway.routeServer(GRAPHQL_WS_PATH, INIT_TIMEOUT_CLOSE, () => lazyGraphql.prepareWs());
    const lazyGraphql = new LazyGraphQL({
      service: { engine: deps.engine, hub, access, sampler, config, logger },
      feed,
      wss: graphqlWs,
      ws: { ...deps, gateway, sampler },
    });
    graphql = lazyGraphql;

    // A connection has as long to send its request headers (its token among them, or a WebSocket
    // upgrade) as a WebSocket has to authenticate: a client trickling headers (slowloris) holds a socket
    // no longer than one that never authenticates. Node checks the deadline every checking interval.
    const headersTimeout = authTimeoutMs(config);
    const timeouts = { headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) };
    app = Fastify({
      logger: false,
      bodyLimit: config.websocket_max_message_size,
      http: timeouts,
      ...(https ? { https: { ...https, ...timeouts } } : {}),
    }) as unknown as FastifyInstance;
    if (https) {
      answerPlainHttpOnTlsPort(app.server as HttpsServer);
      app.addHook('onSend', async (_request, reply) => {
        reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
      });
    }
    registerErrorHandling(app, logger);
    registerCors(app, origins, audit);
    registerAuthRoutes(app, { ...deps, users, loginLimiter });
    registerSqlRoutes(app, deps);
    registerHealthRoutes(app, deps);
    registerAdminRoutes(app, {
      ...deps,
      users,
      roles,
      onUserInvalidated: (username) =>
        sessions.killUser(username, 'AUTH_EXPIRED', REVOKED_MESSAGE, 'credentials revoked'),
    });
    registerSessionRoutes(app, deps);
    registerSubscriptionRoutes(app, { ...deps, hub });
    registerSchemaRoutes(app, deps);
    registerDocumentRoutes(app, { ...deps, documents: new DocumentService(deps.engine) });
    registerAuditRoutes(app, deps);
    registerBackupRoutes(app, deps);
    registerMetricsRoutes(app, { ...deps, sampler, prometheus: new PrometheusExporter() });
    registerGraphQLHttp(app, { ...deps, graphql });
    if (config.enable_console) registerConsoleRoutes(app, { logger, tls: config.enable_tls });
    app.server.on('upgrade', (request, socket, head) => gateway.handleUpgrade(request, socket, head));
    await app.listen({ host: config.host, port: config.port });

    const port = (app.server.address() as AddressInfo).port;
    audit.record({ event: 'server.start', details: { host: config.host, port, tls: config.enable_tls } });
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const scheme = https ? 'https' : 'http';
    let closing: Promise<void> | undefined;
    const running = app;
    return {
      config,
      port,
      url: `${scheme}://${host}:${port}`,
      consoleUrl: config.enable_console ? `${scheme}://${host}:${port}/` : undefined,
      wsUrl: `${https ? 'wss' : 'ws'}://${host}:${port}`,
      engine,
      users,
      roles,
      access,
      gateway,
      sessions,
      audit,
      feed,
      subscriptions: hub,
      metrics: sampler,
      graphql,
      close() {
        closing ??= (async () => {
          await gateway.shutdown();
          await closeHttp(running);
          graphql!.close();
          sampler!.close();
          hub.close();
          relay?.close();
          feed!.close();
          await engine.close();
          await audit.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await app?.close();
    graphql?.close();
    sampler?.close();
    relay?.close();
    feed?.close();
    await engine.close();
    await audit.close();
    throw err;
  }
}
