// The NetworkPolicy oracle, pure: objects and one connection (after Service DNAT) in, a verdict per
// direction and the reasons out. Tests compare the nft dataplane with it, `flatnet check` probes what
// it says, and `flatnet policy explain` prints it. The semantics are the (README "Policy"):
// a pod is isolated in a direction when a policy of its namespace with that type selects it, and the
// traffic allowed is the union of those policies' rules; egress is judged at the source pod and
// ingress at the destination pod, and a connection passes only when both allow it.
import type { Pod } from '../api/types.js';
import { namespaceOf } from './selector.js';
import { rulePortsMatch } from './ports.js';
import {
  indexWorld, isolatingIn, nodeAt, objectRef, podAt, rulePeersMatch,
  type Connection, type Direction, type PolicyIndex, type PolicyWorld,
} from './world.js';

export type { Connection, Direction, PolicyIndex, PolicyWorld } from './world.js';
export { indexWorld, isolatingPolicies, isolatingIn, peerMatches, rulePeersMatch, rulePeerRanges, selectedPods, podAt, nodeAt, objectRef } from './world.js';
export { podAddresses, nodeAddresses, ipBlockRanges, rangesContain, mergeRanges, subtractRange, formatRange, cidrRange, normalizeAddress, addressValue, formatAddress, type IpRange, type Family } from './addresses.js';
export { resolveNamedPort, portMatches, rulePortsMatch, portSpecKind, formatPortSpec, type ConnProtocol, type PortSpecKind } from './ports.js';
export { explainText } from './explain.js';
export { afterDnat } from './dnat.js';

export interface DirectionVerdict {
  /** The pod judged in this direction ("ns/name"), absent when the address is no (non-host-network) pod. */
  pod?: string;
  /** "ns/policy" of every policy isolating it in this direction, in that order. */
  isolatedBy: string[];
  /** The first allowing rule (index in spec.ingress/egress), policies taken in isolatedBy's order. */
  allowedBy?: { policy: string; rule: number };
  /** Not isolated, or some rule allows (or `always` holds). */
  allowed: boolean;
  /** Why the connection passes whatever the rules say (a pod reaching itself, a node its own pod). */
  always?: string;
}

export interface Verdict { allowed: boolean; egress: DirectionVerdict; ingress: DirectionVerdict }

/** The verdict on one connection; for many connections over one world, index it once (evaluateIn). */
export function evaluate(world: PolicyWorld, conn: Connection): Verdict {
  return evaluateIn(indexWorld(world), conn);
}

export function evaluateIn(idx: PolicyIndex, conn: Connection): Verdict {
  const src = podAt(idx, conn.from);
  const dst = podAt(idx, conn.to);
  const egress = judge(idx, 'Egress', src, conn.to, dst, conn);
  const ingress = judge(idx, 'Ingress', dst, conn.from, src, conn);
  // A pod reaching its own address stays inside its network namespace (lo): no hook sees it, and
  // upstream's e2e matrix counts every pod as reaching itself.
  if (src && src === dst) {
    for (const v of [egress, ingress]) { v.allowed = true; v.always = 'a pod always reaches itself'; }
  }
  // The node's own traffic leaves through output, which the policy table does not filter: kubelet
  // probes reach an isolated pod (the API reference: "or if the traffic source is the pod's local node").
  const node = nodeAt(idx, conn.from);
  if (dst && node && dst.spec.nodeName === node.metadata.name) {
    ingress.allowed = true;
    ingress.always = `node ${node.metadata.name} always reaches its own pods`;
  }
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/**
 * One direction: `self` is the pod judged (source for egress, destination for ingress), `peerAddress`
 * and `peerPod` the other end. Named ports resolve on the destination: `self` for ingress, the peer
 * for egress.
 */
function judge(idx: PolicyIndex, direction: Direction, self: Pod | undefined, peerAddress: string, peerPod: Pod | undefined,
  conn: Connection): DirectionVerdict {
  if (!self) return { isolatedBy: [], allowed: true };
  const policies = isolatingIn(idx, self, direction);
  const v: DirectionVerdict = { pod: objectRef(self), isolatedBy: policies.map(objectRef), allowed: policies.length === 0 };
  const destination = direction === 'Ingress' ? self : peerPod;
  for (const p of policies) {
    const rules = direction === 'Ingress'
      ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
      : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
    const i = rules.findIndex((r) => rulePeersMatch(r.peers, namespaceOf(p), peerAddress, peerPod, idx.namespaces)
      && rulePortsMatch(r.ports, destination, conn.port, conn.protocol));
    if (i >= 0) {
      v.allowed = true;
      v.allowedBy = { policy: objectRef(p), rule: i };
      break;
    }
  }
  return v;
}
