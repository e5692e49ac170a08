// Label selectors as the API server defines them, and the pods a policy's selectors pick. Pure: the
// evaluator (the oracle), the nft renderer and `flatnet check` all decide membership here, once.
import { NAMESPACE_NAME_LABEL, type LabelSelector, type Namespace, type NetworkPolicyPeer, type Pod } from '../api/types.js';

/** Whether `labels` satisfy every term of `sel`; an empty selector selects everything. */
export function matchesSelector(sel: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    switch (e.operator) {
      case 'In': if (!has || !(e.values ?? []).includes(l[e.key])) return false; break;
      case 'NotIn': if (has && (e.values ?? []).includes(l[e.key])) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false; // refused at apply; a stored oddity selects nothing rather than everything
    }
  }
  return true;
}

/** A namespace's labels, with the name label the API server guarantees even if the object lacks it. */
export function namespaceLabels(name: string, ns: Namespace | undefined): Record<string, string> {
  return { ...(ns?.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: name };
}

/** The namespace a namespaced object belongs to. */
export const namespaceOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/**
 * Whether a pod is picked by a pod/namespace peer of a policy in `policyNamespace`: both selectors given
 * means AND; no namespaceSelector means the policy's own namespace. ipBlock peers pick no pod here.
 */
export function peerSelectsPod(peer: NetworkPolicyPeer, policyNamespace: string, pod: Pod,
  namespaces: ReadonlyMap<string, Namespace>): boolean {
  if (peer.ipBlock) return false;
  const podNs = namespaceOf(pod);
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, namespaceLabels(podNs, namespaces.get(podNs)))) return false;
  } else if (podNs !== policyNamespace) {
    return false;
  }
  return peer.podSelector ? matchesSelector(peer.podSelector, pod.metadata.labels) : true;
}
