// flatnet agent: one per node, in the node's network namespace (a lab node) or the root one (a host);
// the same code either way. This file only wires: the cluster config, the Node's registration, the
// shared cluster view (all three from the datastore: etcd or the Kubernetes API), then the features
// (features/), each deciding in its own file.
import { dirname, join } from 'node:path';
import { Netns } from '../kernel/netns.js';
import { DROP_LOG_FILE } from '../droplog/file.js';
import type { ClusterConfig } from '../api/types.js';
import { startCniServer } from '../cni/server.js';
import { findUnderlay, type Underlay } from './underlay.js';
import type { AgentView } from './cluster-view.js';
import type { AgentDatastore } from './datastore.js';
import { preparePodNetwork, waitForPodCIDRs, writeNodeConfList } from './node-setup.js';
import { buildFeatures, cniHooksOf, type Feature, type FeatureSwitches, type NodeContext } from './features/index.js';

export interface AgentOptions {
  /** The cluster's config, the Node and the view: etcd or the Kubernetes API (datastore.ts). */
  datastore: AgentDatastore;
  nodeName: string;
  /** Where the node keeps CNI state: net.d/ (conflist), ipam/ (reservations). */
  confDir: string;
  ipamDir: string;
  /** The node interface, or the node IP to find it by; else the default route's interface. */
  iface?: string;
  nodeIP?: string;
  resyncMs?: number;
  /** Optional features, each on unless set to false; a feature turned off removes its table at start. */
  features?: FeatureSwitches;
  log?: (msg: string) => void;
}

export interface Agent {
  readonly underlay: Underlay;
  readonly podCIDRs: string[];
  readonly config: ClusterConfig;
  readonly view: AgentView;
  /** The running features, in start order. */
  readonly features: Feature[];
  /** Resolves when every feature has nothing pending. */
  idle(): Promise<void>;
  /** Completed syncs of the routes loop (tests wait on it). */
  routeSyncs(): number;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const ns = Netns.current();
  const { datastore, nodeName } = opts;
  // 1. Who we are: the cluster's settings, our interface, our Node (and, with etcd, its heartbeat).
  const config = await datastore.clusterConfig(log);
  const underlay = await findUnderlay(ns, { ifname: opts.iface, nodeIP: opts.nodeIP });
  log(`node ${nodeName}: ${underlay.ifname} ${underlay.cidr}${underlay.cidr6 ? ` ${underlay.cidr6}` : ''} mtu ${underlay.mtu}, backend ${config.backend}`);
  await datastore.register(nodeName, underlay, log);

  // 2. The cluster as the features see it, whole before any of them syncs; then our pod CIDR.
  const view = datastore.view;
  await view.start();
  const podCIDRs = await waitForPodCIDRs(view.nodes, nodeName, log);
  const net = await preparePodNetwork(ns, podCIDRs, underlay, config);

  // 3. The features: those turned off remove their tables, the others start (the guard before pods).
  const ctx: NodeContext = { ns, nodeName, underlay, podCIDRs, podMode: net.mode, config, view, resyncMs: opts.resyncMs ?? 30_000, log,
    dropLogFile: join(dirname(opts.confDir), DROP_LOG_FILE) };
  const { enabled, disabled } = buildFeatures(ctx, opts.features);
  for (const f of disabled) {
    await f.cleanup().then(() => log(`${f.name}: turned off, its kernel state removed`),
      (err: unknown) => log(`${f.name}: turned off, cleanup failed: ${(err as Error).message}`));
  }
  await Promise.all(enabled.map((f) => f.start()));
  const routes = enabled.find((f) => f.name === 'routes');
  // Once the routes' first sync is done the cluster may schedule pods here (NetworkUnavailable=False).
  const marked = (routes ? routes.idle() : Promise.resolve()).then(() => datastore.markNetworkAvailable(nodeName, log));

  // 4. Warm CNI answers for this netns (without the server the flatnet-cni shim runs a Node process per
  // call), then the CNI config that lets a runtime start pods.
  const cniServer = await startCniServer({ log, hooks: cniHooksOf(enabled) }).catch((err: unknown) => {
    log(`cni server: not started (${(err as Error).message}); flatnet-cni runs a process per call`);
  });
  writeNodeConfList({ confDir: opts.confDir, ipamDir: opts.ipamDir, podCIDRs, net, nodeName, log });

  return {
    underlay, podCIDRs, config, view, features: enabled,
    routeSyncs: () => routes?.syncs() ?? 0,
    async idle() { await Promise.all(enabled.map((f) => f.idle())); },
    async stop() {
      // The server first: a request in flight may still call a feature's hook.
      await cniServer?.close();
      await Promise.all(enabled.map((f) => f.stop()));
      await datastore.close();
      await marked;
    },
  };
}
