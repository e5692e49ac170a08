// The `flatnet ui` web server: the page, its script (bundled by scripts/build.mjs into dist/ui/app.js),
// the lab's model as JSON, and Server-Sent Events carrying a new model after every change in the store.
// Nothing is fetched from elsewhere: the page works offline.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UiModel } from './model.js';
import { PAGE_HTML } from './page-html.js';
import { traceHandler, type TraceRunner } from './trace-api.js';

export interface UiSource {
  /** The current picture of the lab. */
  read(): Promise<UiModel>;
  /** Calls `onChange` after the lab changed; resolves once watching. */
  watch(onChange: () => void): Promise<{ stop(): Promise<void> }>;
  /** Runs a trace for POST /api/trace; without it the page offers no trace. */
  trace?: TraceRunner;
}

export interface UiServer { url: string; close(): Promise<void> }

/** dist/ui/app.js, found from this module (dist/src/ui/, or the CLI bundle's dist/bin/ and its chunks/). */
export function findAppScript(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from, i = 0; i < 4; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'ui', 'app.js');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`flatnet ui: no ui/app.js above ${from}: build flatnet with "npm run build"`);
}

export async function startUiServer(source: UiSource, listen: { host: string; port: number }): Promise<UiServer> {
  const app = readFileSync(findAppScript(), 'utf8');
  const clients = new Set<ServerResponse>();
  let latest: string | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  // One read at a time; a change during a read asks for one more, so the last change is never lost.
  const refresh = (): void => {
    if (reading) { again = true; return; }
    reading = source.read().then((m) => {
      latest = JSON.stringify(m);
      for (const c of clients) c.write(`event: model\ndata: ${latest}\n\n`);
    }, (err: unknown) => {
      for (const c of clients) c.write(`event: problem\ndata: ${JSON.stringify((err as Error).message)}\n\n`);
    }).finally(() => {
      reading = undefined;
      if (again) { again = false; refresh(); }
    });
  };
  const watcher = await source.watch(refresh);
  refresh();
  await reading;

  const trace = source.trace && traceHandler(source.trace, () => (latest ? JSON.parse(latest) as UiModel : undefined));
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/api/trace' && trace) {
      if (req.method === 'POST') void trace(req, res); else res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    if (req.method !== 'GET') { res.writeHead(405).end(); return; }
    if (path === '/') { res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE_HTML); return; }
    if (path === '/app.js') { res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(app); return; }
    if (path === '/api/model') { res.writeHead(200, { 'content-type': 'application/json' }).end(latest ?? 'null'); return; }
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      if (latest) res.write(`event: model\ndata: ${latest}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  return {
    url: `http://${listen.host}:${port}/`,
    async close() {
      await watcher.stop();
      for (const c of clients) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await reading;
    },
  };
}
