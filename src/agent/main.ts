// `flatnet agent`: the per-node daemon a DaemonSet would run. Flags in, one agent running until SIGTERM.
// Whatever else runs beside it on the node (the lab's kubelet, lab/node-daemon.ts) comes in as a
// companion, so the agent knows nothing of who composes it.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { startAgent, type Agent } from './agent.js';
import { etcdDatastore, readConfigFile, type AgentDatastore } from './datastore.js';
import { startHealthServer, type Readiness } from './health.js';
import { Netns } from '../kernel/netns.js';
import { registerNftElements } from '../metrics/nft.js';
import type { FeatureSwitches } from './features/index.js';

export interface AgentCommandOptions {
  /** flatnet's own etcd (the lab; the default), or a cluster's Kubernetes API. */
  datastore?: 'etcd' | 'kubernetes';
  /** etcd: its endpoint (required). */
  etcd?: string;
  /** kubernetes: a kubeconfig file, else the in-cluster ServiceAccount. */
  kubeconfig?: string;
  /** kubernetes: the network config file (the ConfigMap's net-conf.json; required). */
  config?: string;
  node: string;
  /** Per-node directory: net.d/, ipam/, bin/, cache/, pods/. */
  nodeDir: string;
  iface?: string;
  nodeIP?: string;
  heartbeatTtlSeconds?: number;
  /** Optional features turned off (`--disable`). */
  features?: FeatureSwitches;
  /** Where /healthz, /readyz and /metrics answer ("127.0.0.1:9470" by default; "off": nowhere). */
  healthListen?: string;
}

export const DEFAULT_HEALTH_LISTEN = '127.0.0.1:9470';

/** Something started after the agent and stopped before it (the lab kubelet). */
export interface Companion { stop(): Promise<void> }
/** `store`: the agent's etcd store, when its datastore is etcd. */
export type StartCompanion = (c: { agent: Agent; store?: Store; log: (m: string) => void }) => Promise<Companion>;

/** The datastore the options name, and what closes its connection. */
async function openDatastore(o: AgentCommandOptions, log: (m: string) => void): Promise<{ datastore: AgentDatastore; store?: Store; close(): Promise<void> }> {
  if ((o.datastore ?? 'etcd') === 'etcd') {
    if (!o.etcd) throw new Error('the etcd datastore needs --etcd');
    const store = new EtcdStore({ endpoints: o.etcd });
    return { datastore: etcdDatastore(store, o.heartbeatTtlSeconds), store, close: () => store.close() };
  }
  // Loaded only in this mode: the lab's agents never load the Kubernetes client.
  if (!o.config) throw new Error('the kubernetes datastore needs --config (the network config file)');
  const config = readConfigFile(o.config);
  const { connectKube } = await import('../kube/connect.js');
  const { kubeDatastore } = await import('../kube/agent-datastore.js');
  return { datastore: kubeDatastore(connectKube(o.kubeconfig), config, { log }), close: async () => {} };
}

export async function runAgentCommand(o: AgentCommandOptions, companion?: StartCompanion): Promise<void> {
  const log = (m: string) => console.log(`${new Date().toISOString()} agent[${o.node}] ${m}`);
  for (const d of ['net.d', 'ipam', 'bin', 'cache', 'pods']) mkdirSync(join(o.nodeDir, d), { recursive: true });
  const { datastore, store, close } = await openDatastore(o, log);
  // Up before the agent: a probe must tell "starting" (alive, not ready) from "dead".
  let agent: Agent | undefined;
  const listen = o.healthListen ?? DEFAULT_HEALTH_LISTEN;
  const health = listen === 'off' ? undefined : await startHealthServer(listen, () => readiness(agent)).catch((err: Error) => {
    log(`health: not served on ${listen} (${err.message})`);
    return undefined;
  });
  if (health) {
    // Counted when scraped, in this process's netns: the node's.
    registerNftElements(Netns.current());
    log(`health: /healthz, /readyz and /metrics on ${health.address}`);
  }
  agent = await startAgent({
    datastore, nodeName: o.node, confDir: join(o.nodeDir, 'net.d'), ipamDir: join(o.nodeDir, 'ipam'),
    iface: o.iface, nodeIP: o.nodeIP, features: o.features, log,
  });
  const beside = await companion?.({ agent, store, log });
  log('ready');
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  log('stopping');
  await beside?.stop();
  await agent.stop();
  await health?.close();
  await close();
}

/** Ready once started and every feature has synced once; the detail names those that have not. */
export function readiness(agent: Agent | undefined): Readiness {
  if (!agent) return { ready: false, detail: 'starting: waiting for the cluster config, the Node and its pod CIDR' };
  const waiting = agent.features.filter((f) => f.syncs() === 0).map((f) => f.name);
  return waiting.length ? { ready: false, detail: `waiting for the first sync of ${waiting.join(', ')}` } : { ready: true, detail: `ready: ${agent.features.map((f) => f.name).join(', ')} in sync` };
}
