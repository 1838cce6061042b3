#!/usr/bin/env node
/**
 * Serves the repository's files (so examples/browser/index.html can load packages/client/dist/browser/) and
 * forwards /api/ — HTTP and WebSocket upgrades — to a RustyDB server: the page and the API then share
 * one origin, as they would behind any reverse proxy. No dependencies.
 *
 *   node examples/browser/serve.mjs [--port 3000] [--target http://127.0.0.1:8080]
 *   then open http://127.0.0.1:3000/examples/browser/index.html
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
};

/** Starts the server; resolves with `{ url, close() }`. */
export function serve({ port = 3000, target = 'http://127.0.0.1:8080', root = REPO_ROOT } = {}) {
  const api = new URL(target);
  const apiPort = Number(api.port || 80);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/api/')) {
      const upstream = httpRequest(
        {
          host: api.hostname,
          port: apiPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: api.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
      return;
    }
    const file = normalize(join(root, decodeURIComponent(url.pathname)));
    let ok = file.startsWith(normalize(root + sep));
    try {
      ok &&= statSync(file).isFile();
    } catch {
      ok = false;
    }
    if (!ok) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  const upgraded = new Set();
  server.on('upgrade', (req, socket, head) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.on('error', () => socket.destroy());
    if (!req.url?.startsWith('/api/')) {
      socket.destroy();
      return;
    }
    const upstream = connect(apiPort, api.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address();
      resolve({
        url: `http://127.0.0.1:${bound}`,
        close: () =>
          new Promise((done) => {
            for (const socket of upgraded) socket.destroy();
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] && normalize(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, target: { type: 'string' } } });
  const running = await serve({
    port: Number(values.port ?? 3000),
    target: values.target ?? process.env.RUSTYDB_URL ?? 'http://127.0.0.1:8080',
  });
  console.log(
    `serving ${REPO_ROOT} on ${running.url}; /api/ goes to ${values.target ?? 'http://127.0.0.1:8080'}`,
  );
  console.log(`open ${running.url}/examples/browser/index.html`);
}
