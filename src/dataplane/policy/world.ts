// The cluster as the policy renderer sees it: pods with their addresses and named ports, namespaces by
// name, and which pods each selector picks. Indexed once per render so 1,000 policies over 200 pods
// cost one pass each. Pure.
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, Pod } from '../../api/types.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from '../../policy/selector.js';
import { podAddresses } from '../../policy/addresses.js';
import { resolveNamedPort } from '../../policy/ports.js';

export interface WorldPod {
  key: string; // "ns/name"
  namespace: string;
  pod: Pod;
  local: boolean;
  /** IPv4 and IPv6 addresses (none for host-network pods: they are their node's address). */
  ips: string[];
}

export interface PolicyWorldIndex {
  pods: WorldPod[];
  local: WorldPod[];
  namespaces: ReadonlyMap<string, Namespace>;
}

/** Pods that own an address (podAddresses); `pending` adds those the warm CNI ADD knows before the store does. */
export function indexWorld(nodeName: string, pods: Pod[], namespaces: Namespace[],
  pending?: ReadonlyMap<string, string[]>): PolicyWorldIndex {
  const out: WorldPod[] = [];
  for (const pod of pods) {
    if (pod.spec.hostNetwork) continue;
    const namespace = namespaceOf(pod);
    const key = `${namespace}/${pod.metadata.name}`;
    const ips = [...new Set([...podAddresses(pod), ...(pending?.get(key) ?? [])])];
    if (ips.length === 0) continue;
    out.push({ key, namespace, pod, local: pod.spec.nodeName === nodeName, ips });
  }
  out.sort((a, b) => a.key.localeCompare(b.key));
  return { pods: out, local: out.filter((p) => p.local), namespaces: new Map(namespaces.map((n) => [n.metadata.name, n])) };
}

/** The pods of the policy's namespace its podSelector picks. */
export function selectedBy(policy: NetworkPolicy, pods: WorldPod[]): WorldPod[] {
  const ns = namespaceOf(policy);
  return pods.filter((p) => p.namespace === ns && matchesSelector(policy.spec.podSelector, p.pod.metadata.labels));
}

/** The pods any pod/namespace peer of a rule picks (ipBlock peers pick none). */
export function peerPods(peers: NetworkPolicyPeer[], policyNamespace: string, w: PolicyWorldIndex): WorldPod[] {
  return w.pods.filter((p) => peers.some((peer) => peerSelectsPod(peer, policyNamespace, p.pod, w.namespaces)));
}

export { resolveNamedPort };
