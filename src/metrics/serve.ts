// `GET /metrics` for a process that has no other HTTP server (the controller; the agent answers it on its
// health server). Loopback by default: metrics name pods, nodes and addresses.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { scrape } from './registry.js';

export interface MetricsServer { readonly address: string; close(): Promise<void> }

/** Answers a scrape on `res`; a collector's failure is a 500 naming it, never a crash. */
export function answerScrape(res: ServerResponse): void {
  scrape().then(({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
    (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${err.message}\n`));
}

export function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405).end(); return; }
    if (path === '/metrics') { answerScrape(res); return; }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics\n');
  });
  return listenOn(server, host, port);
}

/** Listens, failing on a taken port rather than later; the handle closes it. */
export function listenOn(server: Server, host: string, port: number): Promise<MetricsServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({ address: `${host}:${port}`, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}

/** A loopback port free right now (the lab gives it to the controller, which runs in the root netns). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
