// `flatnet apiserver`: the lab's Kubernetes API over HTTPS on 127.0.0.1 of the namespace it runs in (the
// lab keeps off the machine's own network but for this one loopback port kubectl needs), or on a given
// address of a lab namespace: the control-plane endpoint agents reach over the node network (--listen).
// Every request is authenticated (a client certificate the lab's CA signed, or a ServiceAccount token)
// and authorized by RBAC before the handler sees it (auth/with-auth.ts).
import { createServer, type Server } from 'node:https';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { createHandler } from './handler.js';
import { createAuth, withAuth } from './auth/with-auth.js';
import { kubeconfigText, readPki, type Pki } from './pki.js';
import type { WatchOptions } from './watch.js';

export const LOOPBACK = '127.0.0.1';

export interface RunningApiServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves `store` with `pki`'s serving certificate on 127.0.0.1:`port` (0: any free port). */
export async function startApiServer(o: { store: Store; pki: Pki; host?: string; port?: number; watch?: Partial<WatchOptions>; log?: (m: string) => void }): Promise<RunningApiServer> {
  const host = o.host ?? LOOPBACK;
  let url = '';
  const handler = createHandler({ store: o.store, get serverAddress() { return url.replace(/^https:\/\//, ''); }, watch: o.watch, log: o.log });
  const auth = await createAuth({ store: o.store, pki: o.pki, log: o.log });
  // A certificate is asked for but not required: a client may present a bearer token instead, and
  // withAuth checks socket.authorized itself (a certificate from another CA counts as none).
  const server: Server = createServer({
    key: o.pki.serverKey, cert: o.pki.serverCert, ca: o.pki.caCert, requestCert: true, rejectUnauthorized: false,
  }, withAuth(auth, handler));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, host, () => { server.off('error', reject); resolve(); });
    });
  } catch (err) { await auth.stop(); throw err; }
  const port = (server.address() as AddressInfo).port;
  url = `https://${host}:${port}`;
  return {
    port, url,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Watches are long requests: end them so close does not wait for their clients.
        server.closeAllConnections();
      });
      await auth.stop();
    },
  };
}

export interface ApiServerDaemonOptions {
  store: Store;
  /** Holds the PKI (pki.ts) and the port file. */
  dir: string;
  /** Where to write the kubeconfig once listening (with `listen`, optional). */
  kubeconfig?: string;
  /** A fixed address and port instead of 127.0.0.1 and the remembered port (no port file then). */
  listen?: { host: string; port: number };
  clusterName: string;
  log: (m: string) => void;
  stopRequested: Promise<void>;
}

/**
 * The daemon: listens on the port it had before (so a restart keeps the kubeconfig valid) or a free
 * one, records the port, writes the kubeconfig, and serves until asked to stop.
 */
export async function runApiServerDaemon(o: ApiServerDaemonOptions): Promise<void> {
  const running = o.listen ? await startFixed(o, o.listen) : await startRemembered(o);
  if (o.kubeconfig) writeAtomic(o.kubeconfig, kubeconfigText(o.clusterName, running.url, readPki(o.dir)), 0o600);
  o.log(`serving the Kubernetes API on ${running.url}${o.kubeconfig ? `; kubeconfig ${o.kubeconfig}` : ''}`);
  await o.stopRequested;
  await running.close();
}

const startFixed = (o: ApiServerDaemonOptions, at: { host: string; port: number }): Promise<RunningApiServer> =>
  startApiServer({ store: o.store, pki: readPki(o.dir), host: at.host, port: at.port, log: o.log, watch: { bookmarkIntervalMs: 10_000 } });

/** On 127.0.0.1, on the port of the previous start when it is free (the kubeconfig stays valid). */
async function startRemembered(o: ApiServerDaemonOptions): Promise<RunningApiServer> {
  const portFile = join(o.dir, 'port');
  let previous: number | undefined;
  try { previous = Number(readFileSync(portFile, 'utf8').trim()) || undefined; } catch { /* first start */ }
  const pki = readPki(o.dir);
  const start = (port: number | undefined) => startApiServer({ store: o.store, pki, port, log: o.log, watch: { bookmarkIntervalMs: 10_000 } });
  let running: RunningApiServer;
  try { running = await start(previous); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || previous === undefined) throw err;
    // Another process took the port while this server was down: a new one, and a new kubeconfig.
    o.log(`port ${previous} is taken; choosing another`);
    running = await start(undefined);
  }
  writeAtomic(portFile, `${running.port}\n`, 0o600);
  return running;
}

function writeAtomic(file: string, text: string, mode: number): void {
  writeFileSync(`${file}.tmp`, text, { mode });
  renameSync(`${file}.tmp`, file);
}

/** `flatnet apiserver --etcd URL --pki-dir DIR (--kubeconfig FILE | --listen HOST:PORT) [--identity NAME]`: the daemon over etcd, until SIGTERM. */
export async function runApiServerCommand(o: { etcd: string; pkiDir: string; kubeconfig?: string; listen?: { host: string; port: number }; clusterName: string }): Promise<void> {
  const { EtcdStore } = await import('../store/etcd.js');
  const log = (m: string) => console.log(`${new Date().toISOString()} apiserver ${m}`);
  // Listen before starting: a signal during startup must still stop cleanly.
  const stopRequested = new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  const store = new EtcdStore({ endpoints: o.etcd });
  try {
    await runApiServerDaemon({ store, dir: o.pkiDir, kubeconfig: o.kubeconfig, listen: o.listen, clusterName: o.clusterName, log, stopRequested });
    log('stopped');
  } finally { await store.close(); }
}
