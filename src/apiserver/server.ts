// `flatnet apiserver`: the lab's Kubernetes API over HTTPS on 127.0.0.1, never another address (the lab
// keeps off the machine's own network but for this one loopback port kubectl needs). A client must
// present a certificate signed by the lab's CA (the kubeconfig's); anything else fails the TLS handshake.
import { createServer, type Server } from 'node:https';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { createHandler } from './handler.js';
import { kubeconfigText, readPki, type Pki } from './pki.js';
import type { WatchOptions } from './watch.js';

export const LOOPBACK = '127.0.0.1';

export interface RunningApiServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves `store` with `pki`'s serving certificate on 127.0.0.1:`port` (0: any free port). */
export async function startApiServer(o: { store: Store; pki: Pki; port?: number; watch?: Partial<WatchOptions>; log?: (m: string) => void }): Promise<RunningApiServer> {
  let url = '';
  const handler = createHandler({ store: o.store, get serverAddress() { return url.replace(/^https:\/\//, ''); }, watch: o.watch, log: o.log });
  const server: Server = createServer({
    key: o.pki.serverKey, cert: o.pki.serverCert, ca: o.pki.caCert, requestCert: true, rejectUnauthorized: true,
  }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, LOOPBACK, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  url = `https://${LOOPBACK}:${port}`;
  return {
    port, url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Watches are long requests: end them so close does not wait for their clients.
      server.closeAllConnections();
    }),
  };
}

export interface ApiServerDaemonOptions {
  store: Store;
  /** Holds the PKI (pki.ts) and the port file. */
  dir: string;
  /** Where to write the kubeconfig once listening. */
  kubeconfig: string;
  clusterName: string;
  log: (m: string) => void;
  stopRequested: Promise<void>;
}

/**
 * The daemon: listens on the port it had before (so a restart keeps the kubeconfig valid) or a free
 * one, records the port, writes the kubeconfig, and serves until asked to stop.
 */
export async function runApiServerDaemon(o: ApiServerDaemonOptions): Promise<void> {
  const portFile = join(o.dir, 'port');
  let previous: number | undefined;
  try { previous = Number(readFileSync(portFile, 'utf8').trim()) || undefined; } catch { /* first start */ }
  const pki = readPki(o.dir);
  const running = await startApiServer({ store: o.store, pki, port: previous, log: o.log, watch: { bookmarkIntervalMs: 10_000 } });
  writeAtomic(portFile, `${running.port}\n`, 0o600);
  writeAtomic(o.kubeconfig, kubeconfigText(o.clusterName, running.url, pki), 0o600);
  o.log(`serving the Kubernetes API on ${running.url}; kubeconfig ${o.kubeconfig}`);
  await o.stopRequested;
  await running.close();
}

function writeAtomic(file: string, text: string, mode: number): void {
  writeFileSync(`${file}.tmp`, text, { mode });
  renameSync(`${file}.tmp`, file);
}
