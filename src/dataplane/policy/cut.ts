// Established connections a policy change now denies. The table lets `ct state established` through
// (replies must pass), so a flow allowed before a change would live on; after every change that wrote
// something, the agent lists this node's conntrack entries and removes the ones the new state denies.
// The next packet of such a flow is new again and meets the table. Pure.

/** One conntrack entry: the original tuple, and the reply's (whose source is the real, post-DNAT server). */
export interface Flow {
  protocol: string; // "tcp", "udp", "icmp", ...
  /** TCP's state ("ESTABLISHED", "TIME_WAIT"), absent for stateless protocols. */
  state?: string;
  orig: { src: string; dst: string; sport?: number; dport?: number };
  reply: { src: string; dst: string; sport?: number; dport?: number };
}

export interface FlowQuery { from: string; to: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' | 'ICMP' }
export type FlowJudge = (q: FlowQuery) => { egress: { allowed: boolean }; ingress: { allowed: boolean } };

/** TCP states of a connection that is over: nothing left to cut. */
const OVER = new Set(['TIME_WAIT', 'CLOSE']);

const PROTOCOLS: Record<string, FlowQuery['protocol']> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP', icmp: 'ICMP', icmpv6: 'ICMP', 'ipv6-icmp': 'ICMP' };

/**
 * The flows to remove: those whose source is a local pod the new state denies egress, or whose real
 * destination is a local pod it denies ingress (other nodes judge their own pods).
 */
export function flowsToCut(flows: Flow[], isLocalPod: (ip: string) => boolean, judge: FlowJudge): Flow[] {
  const cut: Flow[] = [];
  for (const f of flows) {
    const protocol = PROTOCOLS[f.protocol];
    if (!protocol || (f.state !== undefined && OVER.has(f.state))) continue;
    const from = f.orig.src;
    // After DNAT the server answers from its own address and port: that is what policy judged.
    const to = f.reply.src;
    const port = f.reply.sport ?? 0;
    const egressHere = isLocalPod(from);
    const ingressHere = isLocalPod(to);
    if (!egressHere && !ingressHere) continue;
    const v = judge({ from, to, port: protocol === 'ICMP' ? 0 : port, protocol });
    if ((egressHere && !v.egress.allowed) || (ingressHere && !v.ingress.allowed)) cut.push(f);
  }
  return cut;
}
