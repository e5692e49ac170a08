// The cluster as the policy renderer sees it: pods with their addresses and named ports, namespaces by
// name, and which pods each selector picks. Indexed once per render so 1,000 policies over 200 pods
// cost one pass each. Pure.
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, Pod } from '../../api/types.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from '../../policy/selector.js';

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

/** Addresses a pod holds: status.podIPs, else status.podIP. */
export function podIPs(pod: Pod): string[] {
  const listed = pod.status?.podIPs?.map((p) => p.ip) ?? [];
  return listed.length ? listed : pod.status?.podIP ? [pod.status.podIP] : [];
}

/**
 * Pods that own an address: not host-network, not finished (a Succeeded or Failed pod's address may
 * already be another's). A terminating pod still runs, so it stays isolated until it is gone.
 * `pending` adds addresses the warm CNI ADD knows before the store does.
 */
export function indexWorld(nodeName: string, pods: Pod[], namespaces: Namespace[],
  pending?: ReadonlyMap<string, string[]>): PolicyWorldIndex {
  const out: WorldPod[] = [];
  for (const pod of pods) {
    if (pod.spec.hostNetwork) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const namespace = namespaceOf(pod);
    const key = `${namespace}/${pod.metadata.name}`;
    const ips = [...new Set([...podIPs(pod), ...(pending?.get(key) ?? [])])];
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

/** The port a pod's container declares under `name` for `protocol`, if any. */
export function namedPort(pod: Pod, name: string, protocol: string): number | undefined {
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) if (p.name === name && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
  }
  return undefined;
}
