// How many pods a node takes, as the kubelet admits them: at most maxPods (the kubelet's default 110),
// and, for pods on the pod network, no more than its pod CIDR has addresses for: the IPAM hands out
// every address of a slice but the network, the gateway (.1) and, in IPv4, the broadcast.
import ipaddr from 'ipaddr.js';
import { DEFAULT_MAX_PODS, podCIDRsOf, type Node, type Pod } from '../api/types.js';

export interface NodeCapacity {
  /** Pods of any kind (host-network ones too), as maxPods counts them. */
  pods: number;
  /** Pods that take an address from the node's pod CIDR(s). */
  podIPs: number;
}

/** Addresses the IPAM can hand to pods in one CIDR; capped at what a JS number counts exactly. */
export function podAddresses(cidr: string): number {
  const [addr, prefix] = ipaddr.parseCIDR(cidr);
  const bits = (addr.kind() === 'ipv4' ? 32 : 128) - prefix;
  const reserved = addr.kind() === 'ipv4' ? 3 : 2;
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : Math.max(0, 2 ** bits - reserved);
}

/** A node's capacity; a dual-stack pod takes one address of each family, so the smaller one counts. */
export function nodeCapacity(node: Node, maxPods = DEFAULT_MAX_PODS): NodeCapacity {
  const cidrs = podCIDRsOf(node);
  const podIPs = cidrs.length === 0 ? 0 : Math.min(...cidrs.map(podAddresses));
  return { pods: maxPods, podIPs };
}

/** Whether a pod needs an address from its node's pod CIDR. */
export const takesPodIP = (pod: Pod): boolean => !pod.spec.hostNetwork;

/** Why a node is full for this pod, in kube-scheduler's words; undefined when it has room. */
export function fullReason(pod: Pod, capacity: NodeCapacity, used: NodeCapacity): string | undefined {
  if (used.pods >= capacity.pods) return 'Too many pods';
  if (takesPodIP(pod) && used.podIPs >= capacity.podIPs) return 'node(s) had no free address in their pod CIDR';
  return undefined;
}
