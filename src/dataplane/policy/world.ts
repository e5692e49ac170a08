// The cluster as the policy renderer sees it: pods with their addresses and named ports, namespaces by
// name, and which pods each selector picks. Indexed once per render so 1,000 policies over 200 pods
// cost one pass each. Pure.
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, Pod } from '../../api/types.js';
import { matchesSelector, namespaceLabels, namespaceOf } from '../../policy/selector.js';
import { cidrRange, podAddresses, type IpRange } from '../../policy/addresses.js';

export interface WorldPod {
  key: string; // "ns/name"
  namespace: string;
  pod: Pod;
  local: boolean;
  /** IPv4 and IPv6 addresses (none for host-network pods: they are their node's address). */
  ips: string[];
  /** The same, as one-address ranges. */
  ranges: IpRange[];
}

export interface PolicyWorldIndex {
  pods: WorldPod[];
  local: WorldPod[];
  /** Every namespace's labels, the name label included; pods by namespace. */
  namespaceLabels: ReadonlyMap<string, Record<string, string>>;
  byNamespace: ReadonlyMap<string, WorldPod[]>;
  /** Peer lists already resolved in this render: identical peers are common across policies. */
  peerMemo: Map<string, WorldPod[]>;
  selectedMemo: Map<string, WorldPod[]>;
}

/** A pod's addresses as ranges, parsed once per pod object (renders repeat; objects change only with the pod). */
const parsed = new WeakMap<Pod, IpRange[]>();
function rangesOf(pod: Pod, ips: string[]): IpRange[] {
  let r = parsed.get(pod);
  if (!r) { r = ips.map((ip) => cidrRange(ip)!); parsed.set(pod, r); }
  return r;
}

/** Pods that own an address (podAddresses), indexed for one render. */
export function indexWorld(nodeName: string, pods: Pod[], namespaces: Namespace[]): PolicyWorldIndex {
  const out: WorldPod[] = [];
  for (const pod of pods) {
    if (pod.spec.hostNetwork) continue;
    const namespace = namespaceOf(pod);
    const key = `${namespace}/${pod.metadata.name}`;
    const ips = podAddresses(pod);
    if (ips.length === 0) continue;
    out.push({ key, namespace, pod, local: pod.spec.nodeName === nodeName, ips, ranges: rangesOf(pod, ips) });
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const byNamespace = new Map<string, WorldPod[]>();
  for (const p of out) byNamespace.set(p.namespace, [...(byNamespace.get(p.namespace) ?? []), p]);
  const labels = new Map<string, Record<string, string>>();
  for (const n of namespaces) labels.set(n.metadata.name, namespaceLabels(n.metadata.name, n));
  // Pods may name a namespace the view has not delivered yet: it still has its name label.
  for (const ns of byNamespace.keys()) if (!labels.has(ns)) labels.set(ns, namespaceLabels(ns, undefined));
  return { pods: out, local: out.filter((p) => p.local), namespaceLabels: labels, byNamespace, peerMemo: new Map(), selectedMemo: new Map() };
}

/** The local pods of the policy's namespace its podSelector picks. */
export function selectedLocal(policy: NetworkPolicy, w: PolicyWorldIndex): WorldPod[] {
  const ns = namespaceOf(policy);
  const key = `${ns}|${JSON.stringify(policy.spec.podSelector)}`;
  let out = w.selectedMemo.get(key);
  if (!out) {
    out = (w.byNamespace.get(ns) ?? []).filter((p) => p.local && matchesSelector(policy.spec.podSelector, p.pod.metadata.labels));
    w.selectedMemo.set(key, out);
  }
  return out;
}

/**
 * The pods any pod/namespace peer of a rule picks (ipBlock peers pick none), as selector.ts's
 * peerSelectsPod decides, walked namespace by namespace: a namespaceSelector is judged once per
 * namespace, not once per pod.
 */
export function peerPods(peers: NetworkPolicyPeer[], policyNamespace: string, w: PolicyWorldIndex): WorldPod[] {
  const memoKey = `${policyNamespace}|${JSON.stringify(peers)}`;
  const memo = w.peerMemo.get(memoKey);
  if (memo) return memo;
  const picked = new Set<WorldPod>();
  for (const peer of peers) {
    if (peer.ipBlock) continue;
    const namespaces = peer.namespaceSelector
      ? [...w.namespaceLabels].filter(([, l]) => matchesSelector(peer.namespaceSelector, l)).map(([n]) => n)
      : [policyNamespace];
    for (const ns of namespaces) {
      for (const p of w.byNamespace.get(ns) ?? []) {
        if (!peer.podSelector || matchesSelector(peer.podSelector, p.pod.metadata.labels)) picked.add(p);
      }
    }
  }
  const out = w.pods.filter((p) => picked.has(p));
  w.peerMemo.set(memoKey, out);
  return out;
}
