// Gathers what `flatnet check` needs from the cluster's store and the lab's plan.
import { CLUSTER_CONFIG_KEY, NODE_PREFIX, POD_PREFIX } from '../api/keys.js';
import { parseClusterConfig, podCIDRsOf, type Node, type Pod } from '../api/types.js';
import type { Store } from '../store/store.js';
import { podNetns } from '../lab/pods.js';
import type { CheckInputs } from './model.js';

export interface LabView {
  name: string;
  nodeNetns(node: string): string | undefined;
  external?: { netns: string; ip: string };
}

export async function gatherInputs(store: Store, lab: LabView): Promise<CheckInputs> {
  const cfgKv = await store.get(CLUSTER_CONFIG_KEY);
  const config = parseClusterConfig(cfgKv?.value);
  const nodes = (await store.list(NODE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Node);
  const pods = (await store.list(POD_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Pod);
  const inputs: CheckInputs = { clusterCIDRs: config.clusterCIDRs, nodes: [], pods: [], external: lab.external };
  for (const n of nodes) {
    const netns = lab.nodeNetns(n.metadata.name);
    const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (!netns || !ip) continue;
    inputs.nodes.push({ name: n.metadata.name, nodeIP: ip, podCIDRs: podCIDRsOf(n), netns });
  }
  for (const p of pods) {
    const netns = podNetns(lab.name, p, (node) => lab.nodeNetns(node));
    if (!netns || p.status?.phase !== 'Running') continue;
    inputs.pods.push({
      namespace: p.metadata.namespace ?? 'default',
      name: p.metadata.name,
      node: p.spec.nodeName!,
      ips: (p.status.podIPs ?? []).map((x) => x.ip),
      hostNetwork: !!p.spec.hostNetwork,
      netns,
      containers: p.spec.containers.map((c) => ({
        name: c.name,
        ports: (c.ports ?? []).map((cp) => ({ port: cp.containerPort, protocol: (cp.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp' })),
      })),
    });
  }
  return inputs;
}
