/**
 * The web console at `/`: the static files that `npm install` built into packages/console/dist, held
 * in memory (they are small) with a gzip copy of each, served with a strict Content-Security-Policy.
 * The console is an ordinary client of the API; nothing here grants it anything.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../core/logger.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.map', '.txt']);

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  /** Hashed file names under assets/ never change: browsers may keep them for a year. */
  immutable: boolean;
}

/** Where the built console is: packages/console/dist, found through the package so it works installed too. */
export function consoleDistDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('@rustydb/console/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

/**
 * Lists every file of the built console (an empty map when it has not been built); each file is read,
 * compressed and hashed at its first request, not at start: most servers are never asked for the
 * console, and its ~1 MB of files (and gzip level 9 over them) would be held and paid for by each.
 */
export function loadConsoleAssets(dir: string | undefined): Map<string, () => Asset> {
  const assets = new Map<string, () => Asset>();
  if (!dir || !existsSync(join(dir, 'index.html'))) return assets;
  for (const file of listFiles(dir)) {
    const urlPath = `/${relative(dir, file).split(sep).join('/')}`;
    let asset: Asset | undefined;
    assets.set(urlPath, () => (asset ??= readAsset(file, urlPath)));
  }
  return assets;
}

function readAsset(file: string, urlPath: string): Asset {
  const ext = extname(file);
  const body = readFileSync(file);
  return {
    body,
    gzip: COMPRESSIBLE.has(ext) && body.length > 512 ? gzipSync(body, { level: 9 }) : undefined,
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    immutable: urlPath.startsWith('/assets/'),
  };
}

/** A Host header that can go into a header value as it is (no spaces, quotes or separators). */
const SAFE_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** Where the built index.html asks for the per-response nonce (see the console's index.html). */
export const NONCE_PLACEHOLDER = '__RUSTYDB_CSP_NONCE__';

/**
 * Only the console's own files run; it connects only to this server. Style elements need the
 * response's nonce (the code editor creates its styles at run time and sets the nonce on them);
 * style attributes and inline scripts are refused. `connect-src` names the WebSocket origin
 * explicitly because older browsers do not let `'self'` cover `ws:`/`wss:`.
 */
export function contentSecurityPolicy(host: string | undefined, tls: boolean, nonce: string): string {
  const socketOrigin = host && SAFE_HOST.test(host) ? ` ${tls ? 'wss' : 'ws'}://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src 'self'${socketOrigin}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>RustyDB console not built</title>
<h1>The RustyDB console has not been built</h1>
<p>Run <code>npm install</code> (or <code>npm run build</code>) at the root of the repository, then restart the server.
The API is running: see docs/protocol.md.</p>`;

export interface ConsoleRouteDeps {
  logger: Logger;
  tls: boolean;
  /** The built console; default: packages/console/dist. */
  distDir?: string | undefined;
}

export function registerConsoleRoutes(app: FastifyInstance, deps: ConsoleRouteDeps): void {
  const assets = loadConsoleAssets(deps.distDir ?? consoleDistDir());
  if (assets.size === 0) deps.logger.warn('the web console is not built: run npm install (or npm run build)');

  const common = (reply: FastifyReply, type: string): void => {
    reply.header('content-type', type);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
  };

  const send = (request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply => {
    common(reply, asset.type);
    reply.header('etag', asset.etag);
    reply.header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (asset.gzip) reply.header('vary', 'accept-encoding');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    const acceptsGzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (asset.gzip && acceptsGzip) {
      reply.header('content-encoding', 'gzip');
      return reply.send(asset.gzip);
    }
    return reply.send(asset.body);
  };

  /** The page itself: a fresh nonce for every response, so it is never cached. */
  const sendIndex = (request: FastifyRequest, reply: FastifyReply, index: Asset): FastifyReply => {
    const nonce = randomBytes(18).toString('base64');
    common(reply, index.type);
    reply.header('cache-control', 'no-store');
    reply.header('content-security-policy', contentSecurityPolicy(request.headers.host, deps.tls, nonce));
    reply.header('x-frame-options', 'DENY');
    return reply.send(index.body.toString('utf8').replaceAll(NONCE_PLACEHOLDER, nonce));
  };

  app.get('/', async (request, reply) => {
    const index = assets.get('/index.html');
    if (!index) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
    return sendIndex(request, reply, index());
  });
  // Every other file of the build, by its exact path (no directory listing, no path walking: the
  // map holds only what the build wrote).
  for (const [path, asset] of assets) {
    if (path === '/index.html') continue;
    app.get(path, async (request, reply) => send(request, reply, asset()));
  }
}
