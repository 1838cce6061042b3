/**
 * Puts the server together: engine, users and tokens, the HTTP API and the WebSocket endpoints, and
 * an orderly shutdown (every socket gets 1001, then the engine closes).
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from './config/config.ts';
import { SqliteEngine } from './engine/sqlite/sqlite-engine.ts';
import type { Engine } from './engine/engine.ts';
import { UserStore } from './auth/user-store.ts';
import { TokenService } from './auth/tokens.ts';
import { Authenticator } from './auth/authenticator.ts';
import { loadSigningSecret } from './auth/signing-secret.ts';
import { generatePassword } from './auth/passwords.ts';
import { consoleLogger, type Logger } from './core/logger.ts';
import { RoleStore } from './auth/role-store.ts';
import { AccessControl } from './auth/access-control.ts';
import { registerErrorHandling } from './http/http-helpers.ts';
import { registerAuthRoutes } from './http/auth-routes.ts';
import { registerSqlRoutes } from './http/sql-routes.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { registerAdminRoutes } from './http/admin-routes.ts';
import { WebSocketGateway } from './ws/websocket-gateway.ts';
import { STREAM_PATH, streamEndpoint } from './ws/stream-endpoint.ts';

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
  /** `ws://host:port` (or wss). */
  readonly wsUrl: string;
  readonly engine: Engine;
  readonly users: UserStore;
  readonly roles: RoleStore;
  readonly access: AccessControl;
  readonly gateway: WebSocketGateway;
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

async function bootstrapAdmin(users: UserStore, config: ServerConfig, options: StartOptions): Promise<void> {
  if ((await users.count()) > 0) return;
  const password = config.admin_password ?? generatePassword();
  await users.create('admin', password, ['admin']);
  if (!config.admin_password) options.onGeneratedAdminPassword?.(password);
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RustyServer> {
  const logger = options.logger ?? consoleLogger;
  const https = config.enable_tls
    ? {
        cert: readTlsFile('tls_cert_path', config.tls_cert_path!),
        key: readTlsFile('tls_key_path', config.tls_key_path!),
        minVersion: 'TLSv1.2' as const,
      }
    : undefined;

  const engine = await SqliteEngine.open({ dataDir: config.data_dir, poolSize: config.engine_pool_size });
  let app: FastifyInstance | undefined;
  try {
    const users = new UserStore(engine.internal);
    const roles = new RoleStore(engine.internal);
    await users.migrate();
    await roles.migrate();
    await bootstrapAdmin(users, config, options);
    const access = new AccessControl(users, roles);
    const tokens = new TokenService(loadSigningSecret(config.data_dir, config.jwt_secret), config.token_ttl);
    const authenticator = new Authenticator(users, tokens);
    const deps = { engine, authenticator, access, config, logger };

    const gateway = new WebSocketGateway(config, logger);
    gateway.route(STREAM_PATH, streamEndpoint(deps));

    app = Fastify({
      logger: false,
      bodyLimit: config.websocket_max_message_size,
      ...(https ? { https } : {}),
    }) as unknown as FastifyInstance;
    if (https) {
      app.addHook('onSend', async (_request, reply) => {
        reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
      });
    }
    registerErrorHandling(app, logger);
    registerAuthRoutes(app, deps);
    registerSqlRoutes(app, deps);
    registerHealthRoutes(app, deps);
    registerAdminRoutes(app, { ...deps, users, roles });
    app.server.on('upgrade', (request, socket, head) => gateway.handleUpgrade(request, socket, head));
    await app.listen({ host: config.host, port: config.port });

    const port = (app.server.address() as AddressInfo).port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const scheme = https ? 'https' : 'http';
    let closing: Promise<void> | undefined;
    const running = app;
    return {
      config,
      port,
      url: `${scheme}://${host}:${port}`,
      wsUrl: `${https ? 'wss' : 'ws'}://${host}:${port}`,
      engine,
      users,
      roles,
      access,
      gateway,
      close() {
        closing ??= (async () => {
          await gateway.shutdown();
          await running.close();
          await engine.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await app?.close();
    await engine.close();
    throw err;
  }
}
