// The guard table, as data: what a pod may not send. Pure; the applier (apply.ts) puts it in the kernel.
import ipaddr from 'ipaddr.js';
import type { Node } from '../../api/types.js';

export const GUARD_TABLE = 'flatnet-guard';

export interface GuardSkeletonInputs {
  /** Interface names (nft patterns) that pods' packets arrive on: host veths, the pod bridge. */
  podInterfaces: string[];
  /** The cluster's VXLAN port: only nodes may send to it. */
  vxlanPort: number;
}

/** The node-address sets, as `nft list` names them. */
export type GuardSet = 'nodes4' | 'nodes6';
export type GuardElements = Record<GuardSet, Set<string>>;

/**
 * The table without set elements, in the canonical form `nft list table` prints (so a restarted agent
 * can tell its own table from another shape). Priority raw (-300): before conntrack, so a dropped
 * packet leaves no flow behind, and before the proxy's DNAT (-100) and any forwarding or delivery.
 */
export function renderGuardSkeleton(inp: GuardSkeletonInputs): string {
  const rpf = inp.podInterfaces.map((i) => `\t\tiifname "${i}" fib saddr . iif oif missing drop`);
  // As Calico drops VXLAN from workloads: a pod's datagram to a node is masqueraded to its node's address,
  // which the node check below would let in.
  const noVxlan = inp.podInterfaces.map((i) => `\t\tiifname "${i}" udp dport ${inp.vxlanPort} drop`);
  return [
    `table inet ${GUARD_TABLE} {`,
    '\tset nodes4 {', '\t\ttype ipv4_addr', '\t}', '',
    '\tset nodes6 {', '\t\ttype ipv6_addr', '\t}', '',
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
    // Duplicate address detection sends from "::", which no route leads back to.
    '\t\tip6 saddr :: return',
    // A pod's packet must come from an address routed back through the interface it came in on.
    ...rpf,
    ...noVxlan,
    // VXLAN to this node only from a cluster node: a pod's plain UDP socket must not inject inner packets.
    `\t\tudp dport ${inp.vxlanPort} fib daddr type local ip saddr != @nodes4 drop`,
    `\t\tudp dport ${inp.vxlanPort} fib daddr type local ip6 saddr != @nodes6 drop`,
    '\t}',
    '}',
  ].join('\n') + '\n';
}

/** Every node's InternalIP, by family, as nft prints addresses. Pure. */
export function guardElements(nodes: Iterable<Node>): GuardElements {
  const out: GuardElements = { nodes4: new Set(), nodes6: new Set() };
  for (const n of nodes) {
    for (const a of n.status?.addresses ?? []) {
      if (a.type !== 'InternalIP' || !ipaddr.isValid(a.address)) continue;
      const ip = ipaddr.parse(a.address);
      out[ip.kind() === 'ipv4' ? 'nodes4' : 'nodes6'].add(ip.toString());
    }
  }
  return out;
}
