// The steps before any feature runs: the cluster config, this node's pod CIDRs, and the pod network's
// fixed parts (forwarding, the bridge, the CNI config). Each is one function the agent calls in order.
import { join } from 'node:path';
import { CLUSTER_CONFIG_KEY, objectKey } from '../api/keys.js';
import { parseClusterConfig, podCIDRsOf, type ClusterConfig, type Node } from '../api/types.js';
import type { Netns } from '../kernel/netns.js';
import type { ObjectCache } from './cluster-view.js';
import type { Store } from '../store/store.js';
import { podMTU } from '../dataplane/routes/index.js';
import { BRIDGE, renderConfList, writeConfList } from './cni-config.js';
import { ensureBridge, ensureForwarding } from './bridge.js';
import type { Underlay } from './underlay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the operator (`lab up`) to write the cluster config. */
export async function readClusterConfig(store: Store, log: (m: string) => void): Promise<ClusterConfig> {
  for (let waited = 0; ; waited += 500) {
    const kv = await store.get(CLUSTER_CONFIG_KEY);
    if (kv) return parseClusterConfig(kv.value);
    if (waited % 10_000 === 0) log(`waiting for the cluster config at ${CLUSTER_CONFIG_KEY}`);
    await sleep(500);
  }
}

/** The pod CIDR comes from the controller; nothing on this node can be set up before it. */
export async function waitForPodCIDRs(nodes: ObjectCache<Node>, nodeName: string, log: (m: string) => void): Promise<string[]> {
  const selfKey = objectKey('Node', nodeName);
  let podCIDRs = podCIDRsOf(nodes.get(selfKey));
  if (podCIDRs.length === 0) {
    log(`node ${nodeName}: waiting for a pod CIDR`);
    podCIDRs = await new Promise<string[]>((resolve) => {
      nodes.onChange(() => { const c = podCIDRsOf(nodes.get(selfKey)); if (c.length) resolve(c); });
    });
  }
  log(`node ${nodeName}: pod CIDR ${podCIDRs.join(', ')}`);
  return podCIDRs;
}

/** Routed pod interfaces spare every packet a bridge hop (and bridge netfilter); they are IPv4 only. */
export function podModeFor(podCIDRs: string[]): 'routed' | 'bridge' {
  return podCIDRs.every((c) => !c.includes(':')) ? 'routed' : 'bridge';
}

export interface PodNetwork { mode: 'routed' | 'bridge'; mtu: number }

/** Forwarding and (in bridge mode) the bridge: what routes and the CNI plugin expect to find. */
export async function preparePodNetwork(ns: Netns, podCIDRs: string[], underlay: Underlay, config: ClusterConfig): Promise<PodNetwork> {
  // A configured MTU wins (the ConfigMap's mtu); 0 or none follows the node's interface.
  const mtu = config.mtu ? config.mtu : podMTU(underlay.mtu, config.backend);
  const mode = podModeFor(podCIDRs);
  ensureForwarding(podCIDRs.some((c) => c.includes(':')));
  if (mode === 'bridge') await ensureBridge(ns, BRIDGE, podCIDRs, mtu);
  return { mode, mtu };
}

/** The node is ready for pods once this file exists: a runtime starts pods when it sees it. */
export function writeNodeConfList(o: { confDir: string; ipamDir: string; podCIDRs: string[]; net: PodNetwork; nodeName: string; log: (m: string) => void }): void {
  const file = join(o.confDir, '10-flatnet.conflist');
  if (writeConfList(file, renderConfList({ podCIDRs: o.podCIDRs, mtu: o.net.mtu, dataDir: o.ipamDir, mode: o.net.mode }))) {
    o.log(`node ${o.nodeName}: wrote ${file} (mtu ${o.net.mtu})`);
  }
}
