/**
 * What a browser test loads pages from: static files, with `/api/` (HTTP and WebSocket upgrades)
 * relayed to the RustyDB server, so the page and the API share one origin as behind a reverse proxy.
 * `refuse` makes the API unreachable for new connections (the server "not back yet").
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css',
};

export class WebServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;
  refuse = false;

  /** `mounts`: URL prefix → directory. `apiPort`: the RustyDB server (it may restart on that port). */
  private constructor(mounts: Record<string, string>, apiPort: number) {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname.startsWith('/api/')) {
        if (this.refuse) {
          res.writeHead(502).end();
          return;
        }
        const upstream = httpRequest(
          { host: '127.0.0.1', port: apiPort, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.writeHead(502).end());
        req.pipe(upstream);
        return;
      }
      for (const [prefix, dir] of Object.entries(mounts)) {
        if (!url.pathname.startsWith(prefix)) continue;
        const file = normalize(join(dir, decodeURIComponent(url.pathname.slice(prefix.length))));
        if (!file.startsWith(normalize(dir + sep)) || !existsSync(file) || !statSync(file).isFile()) break;
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
        createReadStream(file).pipe(res);
        return;
      }
      res.writeHead(404).end('not found');
    });
    this.#server.on('upgrade', (req, socket: Socket, head) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      if (this.refuse || !req.url?.startsWith('/api/')) {
        socket.destroy();
        return;
      }
      const upstream = tcpConnect(apiPort, '127.0.0.1', () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      this.#sockets.add(upstream);
      upstream.on('close', () => {
        this.#sockets.delete(upstream);
        socket.destroy();
      });
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
    });
  }

  static async start(mounts: Record<string, string>, apiPort: number): Promise<WebServer> {
    const web = new WebServer(mounts, apiPort);
    await new Promise<void>((resolve) => web.#server.listen(0, '127.0.0.1', resolve));
    web.port = (web.#server.address() as { port: number }).port;
    return web;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
