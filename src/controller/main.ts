// `flatnet controller`: the cluster's control loops as a daemon. Any number may run; one leads (the
// others stand by with warm mirrors). Runs until SIGTERM or SIGINT, then hands leadership over at once.
// With --datastore kubernetes it runs only the pod-CIDR loop (kube-podcidr.ts), as one replica.
import { hostname } from 'node:os';
import { EtcdStore } from '../store/etcd.js';
import { startController } from './controller.js';
import { parseListen } from '../agent/health.js';
import { startMetricsServer, type MetricsServer } from '../metrics/serve.js';

export interface ControllerCommandOptions {
  /** etcd (the lab; default) or kubernetes (a real cluster: only pod CIDRs). */
  datastore?: 'etcd' | 'kubernetes';
  etcd?: string;
  /** kubernetes: a kubeconfig file, else the in-cluster ServiceAccount. */
  kubeconfig?: string;
  /** kubernetes: the network config file (net-conf.json: the cluster CIDR and node mask size). */
  config?: string;
  identity?: string;
  leaseTtlSeconds?: number;
  nodeMonitorGraceMs?: number;
  /** Where GET /metrics answers ("127.0.0.1:9471" by default; "off": nowhere). */
  metricsListen?: string;
}

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9471';

/** The metrics server, or undefined (off, or the port taken: logged, the controller runs on). */
async function serveMetrics(listen: string | undefined, log: (m: string) => void): Promise<MetricsServer | undefined> {
  const at = listen ?? DEFAULT_METRICS_LISTEN;
  if (at === 'off') return undefined;
  const { host, port } = parseListen(at);
  const server = await startMetricsServer(host, port).catch((err: Error) => { log(`metrics: not served on ${at} (${err.message})`); return undefined; });
  if (server) log(`metrics: /metrics on ${server.address}`);
  return server;
}

export async function runControllerCommand(o: ControllerCommandOptions): Promise<void> {
  const identity = o.identity ?? `${hostname()}-${process.pid}`;
  const log = (m: string) => console.log(`${new Date().toISOString()} controller[${identity}] ${m}`);
  if (o.leaseTtlSeconds !== undefined && !(Number.isInteger(o.leaseTtlSeconds) && o.leaseTtlSeconds >= 1)) {
    throw new Error(`--lease-ttl ${o.leaseTtlSeconds}: expected a whole number of seconds >= 1`);
  }
  if (o.datastore === 'kubernetes') return runKubeController(o, log);
  if (!o.etcd) throw new Error('controller --datastore etcd needs --etcd');
  const store = new EtcdStore({ endpoints: o.etcd });
  const metrics = await serveMetrics(o.metricsListen, log);
  // Listen before starting: a signal during startup must still stop cleanly.
  const stopRequested = new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  try {
    const controller = await startController({ store, identity, leaseTtlSeconds: o.leaseTtlSeconds, nodeMonitorGraceMs: o.nodeMonitorGraceMs, log });
    log(controller.isLeader() ? 'started' : 'started; standing by for leadership');
    await stopRequested;
    log('stopping');
    await controller.stop();
  } finally {
    await store.close();
    await metrics?.close();
  }
}

async function runKubeController(o: ControllerCommandOptions, log: (m: string) => void): Promise<void> {
  if (!o.config) throw new Error('controller --datastore kubernetes needs --config FILE (the network config)');
  const stopRequested = new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  const { readConfigFile } = await import('../agent/datastore.js');
  const config = readConfigFile(o.config);
  const { connectKube } = await import('../kube/connect.js');
  const { startKubePodCIDRController } = await import('./kube-podcidr.js');
  const metrics = await serveMetrics(o.metricsListen, log);
  const controller = await startKubePodCIDRController({ kc: connectKube(o.kubeconfig), config, log });
  log(`started: pod CIDRs from ${config.clusterCIDRs.join(', ')}`);
  await stopRequested;
  log('stopping');
  await controller.stop();
  await metrics?.close();
}
