// The objects policy is decided over, and who is who in them, pure: which pod an address is, which
// policies isolate a pod in a direction, and whether a rule's peer is a given address. The evaluator
// and the nft renderer both ask here, so membership is decided once.
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, Node, Pod } from '../api/types.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from './selector.js';
import { addressValue, ipBlockRanges, mergeRanges, nodeAddresses, normalizeAddress, podAddresses, rangesContain, type IpRange } from './addresses.js';
import type { ConnProtocol } from './ports.js';

export interface PolicyWorld { namespaces: Namespace[]; pods: Pod[]; policies: NetworkPolicy[]; nodes: Node[] }

/** An address after DNAT; `port` is the real destination port (0 for ICMP). */
export interface Connection { from: string; to: string; port: number; protocol: ConnProtocol }

export type Direction = 'Ingress' | 'Egress';

/** "namespace/name" of a namespaced object. */
export const objectRef = (o: { metadata: { namespace?: string; name: string } }): string => `${namespaceOf(o)}/${o.metadata.name}`;

/**
 * The policies that isolate `pod` in `direction`: those of its own namespace (a policy never isolates
 * another namespace's pods) whose policyTypes hold the direction and whose podSelector picks the pod.
 * In "ns/name" order, so the first allowing rule is the same one every time.
 */
export function isolatingPolicies(world: { policies: readonly NetworkPolicy[] }, pod: Pod, direction: Direction): NetworkPolicy[] {
  const ns = namespaceOf(pod);
  return world.policies
    .filter((p) => namespaceOf(p) === ns && (p.spec.policyTypes ?? ['Ingress']).includes(direction)
      && matchesSelector(p.spec.podSelector, pod.metadata.labels))
    .sort((a, b) => (objectRef(a) < objectRef(b) ? -1 : objectRef(a) > objectRef(b) ? 1 : 0));
}

/** The world looked up by address; build it once to judge many connections. */
export interface PolicyIndex {
  world: PolicyWorld;
  namespaces: Map<string, Namespace>;
  /** Address → the pod that has it (podAddresses: not host-network, not finished). */
  podByAddress: Map<string, Pod>;
  /** Address → the node that has it (InternalIP). */
  nodeByAddress: Map<string, Node>;
  /** Address → the host-network pods on the node with that address (for explain only). */
  hostNetworkByAddress: Map<string, Pod[]>;
  /** Namespace → its policies. */
  policiesByNamespace: Map<string, NetworkPolicy[]>;
  /** isolatingIn's answers, per pod and direction (the world does not change under an index). */
  isolating: Map<Pod, Partial<Record<Direction, NetworkPolicy[]>>>;
}

export function indexWorld(world: PolicyWorld): PolicyIndex {
  const idx: PolicyIndex = {
    world, namespaces: new Map(), podByAddress: new Map(), nodeByAddress: new Map(),
    hostNetworkByAddress: new Map(), policiesByNamespace: new Map(), isolating: new Map(),
  };
  for (const ns of world.namespaces) idx.namespaces.set(ns.metadata.name, ns);
  for (const pod of world.pods) for (const a of podAddresses(pod)) idx.podByAddress.set(a, pod);
  for (const node of world.nodes) for (const a of nodeAddresses(node)) idx.nodeByAddress.set(a, node);
  for (const pod of world.pods) {
    if (!pod.spec.hostNetwork || !pod.spec.nodeName) continue;
    const node = world.nodes.find((n) => n.metadata.name === pod.spec.nodeName);
    for (const a of node ? nodeAddresses(node) : []) idx.hostNetworkByAddress.set(a, [...(idx.hostNetworkByAddress.get(a) ?? []), pod]);
  }
  for (const p of world.policies) {
    const ns = namespaceOf(p);
    idx.policiesByNamespace.set(ns, [...(idx.policiesByNamespace.get(ns) ?? []), p]);
  }
  return idx;
}

/** The pod judged at an address: undefined for an address that is no (non-host-network) pod's. */
export function podAt(idx: PolicyIndex, address: string): Pod | undefined {
  const a = normalizeAddress(address);
  return a === undefined ? undefined : idx.podByAddress.get(a);
}

/** The node whose own address this is, if any. */
export function nodeAt(idx: PolicyIndex, address: string): Node | undefined {
  const a = normalizeAddress(address);
  return a === undefined ? undefined : idx.nodeByAddress.get(a);
}

/** isolatingPolicies over an index (only the pod's namespace is searched). */
export function isolatingIn(idx: PolicyIndex, pod: Pod, direction: Direction): NetworkPolicy[] {
  let cached = idx.isolating.get(pod);
  if (!cached) idx.isolating.set(pod, cached = {});
  return cached[direction] ??= isolatingPolicies({ policies: idx.policiesByNamespace.get(namespaceOf(pod)) ?? [] }, pod, direction);
}

/**
 * Whether one peer of a rule of a policy in `policyNamespace` is the other end of a connection, at
 * `address`, being `pod` (undefined when the address is no pod's): an ipBlock by address alone (pod
 * addresses included); selectors only for a pod (host-network pods and nodes never match them).
 */
export function peerMatches(peer: NetworkPolicyPeer, policyNamespace: string, address: string, pod: Pod | undefined,
  namespaces: ReadonlyMap<string, Namespace>): boolean {
  if (peer.ipBlock) return rangesContain(ipBlockRanges(peer), address);
  return pod !== undefined && peerSelectsPod(peer, policyNamespace, pod, namespaces);
}

/** Whether a rule's peers (`from` or `to`) include the other end: absent or empty means everyone. */
export function rulePeersMatch(peers: readonly NetworkPolicyPeer[] | undefined, policyNamespace: string, address: string,
  pod: Pod | undefined, namespaces: ReadonlyMap<string, Namespace>): boolean {
  if (!peers || peers.length === 0) return true;
  return peers.some((p) => peerMatches(p, policyNamespace, address, pod, namespaces));
}

/** The pods (with addresses for matching) a pod/namespace peer picks; [] for an ipBlock peer. */
export function selectedPods(idx: PolicyIndex, peer: NetworkPolicyPeer, policyNamespace: string): Pod[] {
  if (peer.ipBlock) return [];
  return idx.world.pods.filter((p) => podAddresses(p).length > 0 && peerSelectsPod(peer, policyNamespace, p, idx.namespaces));
}

/**
 * Every address a rule's peers (`from`/`to`) take in, as merged disjoint ranges: ipBlocks (minus their
 * own excepts) and the addresses of the pods the selector peers pick. Undefined when the rule has no
 * peers: every address, node and outside addresses included.
 */
export function rulePeerRanges(idx: PolicyIndex, peers: readonly NetworkPolicyPeer[] | undefined, policyNamespace: string): IpRange[] | undefined {
  if (!peers || peers.length === 0) return undefined;
  const all: IpRange[] = [];
  for (const peer of peers) {
    if (peer.ipBlock) { all.push(...ipBlockRanges(peer)); continue; }
    for (const pod of selectedPods(idx, peer, policyNamespace)) {
      for (const a of podAddresses(pod)) {
        const v = addressValue(a)!;
        all.push({ family: v.family, first: v.value, last: v.value });
      }
    }
  }
  return mergeRanges(all);
}
