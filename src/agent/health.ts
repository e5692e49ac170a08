// The agent's health endpoint, for a DaemonSet's probes (deploy/flatnet.yaml): `GET /healthz` answers
// while the process runs (liveness: a stuck event loop cannot answer), `GET /readyz` only once every
// feature has synced at least once (routes, guard and policy are in place: pods may start). It listens
// on loopback in the node's own network namespace (hostNetwork in a cluster; the node netns in the lab).
// `GET /metrics` answers the process's Prometheus metrics (src/metrics/) on the same port.
import { createServer, type Server } from 'node:http';
import { answerScrape, listenOn } from '../metrics/serve.js';

export interface Readiness { ready: boolean; detail: string }

export interface HealthServer { readonly address: string; close(): Promise<void> }

/** "127.0.0.1:9470" → host and port; throws naming the value when it is not that shape. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`--health-listen "${text}": expected ADDRESS:PORT, such as 127.0.0.1:9470, or "off"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export function startHealthServer(listen: string, readiness: () => Readiness): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405).end(); return; }
    if (path === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'); return; }
    if (path === '/metrics') { answerScrape(res); return; }
    if (path === '/readyz') {
      const r = readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.detail}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /readyz, /metrics\n');
  });
  return listenOn(server, host, port);
}
