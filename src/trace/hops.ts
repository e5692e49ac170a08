// One node's trace events as hops, pure: where the packet came in, the rules that decided something
// (DNAT, masquerade, a policy's accept or drop, with the object each belongs to), the route, the
// conntrack entry, and where it went out.
import type { ConntrackEntry, ConntrackTuple } from '../kernel/conntrack.js';
import type { Service } from '../api/types.js';
import { objectRef, podAt, nodeAt, type PolicyIndex } from '../policy/evaluate.js';
import type { TraceEvent, TracedPacketFields } from './events.js';

/** `ip route get` for the packet's destination on a node, and the VXLAN peer when the route encapsulates. */
export interface RouteFact {
  dst: string;
  dev: string;
  gateway?: string;
  vxlan?: { vni: number; local?: string; remote?: string };
}

export interface NodeObservation {
  node: string;
  events: TraceEvent[];
  route?: RouteFact;
  conntrack?: ConntrackEntry;
}

export interface Hop {
  node: string;
  kind: 'in' | 'rule' | 'route' | 'conntrack' | 'out' | 'drop';
  text: string;
  /** The object the hop belongs to: "Service default/web → endpoint default/web-2 (10.244.2.2:8080)", "NetworkPolicy ns/name". */
  object?: string;
  table?: string;
  chain?: string;
  verdict?: string;
}

export interface NodeHops {
  hops: Hop[];
  dropped?: Hop;
  /** The packet as it left the node's last hook (after DNAT and SNAT). */
  last?: TracedPacketFields;
  /** The Service the packet was addressed to and the endpoint its DNAT chose, when one did. */
  service?: { ref: string; endpoint: string; endpointPod?: string };
}

const endpointText = (addr?: string, port?: number) => `${addr ?? '?'}${port !== undefined ? `:${port}` : ''}`;
const tupleText = (t: ConntrackTuple) => `${endpointText(t.src, t.sport)} → ${endpointText(t.dst, t.dport)}${t.icmp ? ` id ${t.icmp.id}` : ''}`;

/** Whose interface this is: a pod's veth, the node's segment link, its VXLAN device. */
function interfaceOwner(idx: PolicyIndex, name: string | undefined, podAddress: string | undefined): string {
  if (!name) return 'the node itself';
  if (name.startsWith('fn')) {
    const pod = podAddress ? podAt(idx, podAddress) : undefined;
    return pod ? `veth of ${objectRef(pod)}` : 'a pod veth';
  }
  if (name.startsWith('flatnet.')) return 'VXLAN device';
  if (name === 'eth0') return 'node segment';
  return name;
}

/** The Service at a ClusterIP and port, or at a NodePort when `toNode` (the address is a node's). */
export function findService(services: readonly Service[], addr: string | undefined, port: number | undefined, protocol: string | undefined, toNode = false): Service | undefined {
  const proto = (p: { protocol: string }) => p.protocol.toLowerCase() === (protocol ?? 'tcp');
  return services.find((s) => ((s.spec.clusterIPs ?? (s.spec.clusterIP ? [s.spec.clusterIP] : [])).includes(addr ?? '')
    && s.spec.ports.some((p) => p.port === port && proto(p)))
    || (toNode && s.spec.type === 'NodePort' && s.spec.ports.some((p) => p.nodePort === port && proto(p))));
}

/** What a rule hit means in flatnet's terms, from its table, text and comment; undefined for plumbing (plain jumps). */
function ruleObject(ev: TraceEvent): string | undefined {
  const c = ev.comment ?? '';
  const allow = /^(\S+\/\S+) (ingress|egress) (\d+)$/.exec(c);
  if (allow) return `NetworkPolicy ${allow[1]} ${allow[2]} rule ${allow[3]}`;
  const isolated = /isolated by (.+)$/.exec(c);
  if (isolated) return `NetworkPolicy ${isolated[1].split(/[ ,]+/).filter((w) => w.includes('/')).join(', ')}: isolated, no rule allows`;
  if (/(^|\s)(masquerade|snat)(\s|$)/.test(ev.rule ?? '')) return 'masquerade (source NAT to the node address)';
  if (c) return c;
  return undefined;
}

// A NAT statement, not a chain named after one ("jump service-dnat").
const NAT = /(^|\s)(dnat|snat|masquerade)(\s|$)/;
const decides = (ev: TraceEvent) => ev.kind === 'rule'
  && (['accept', 'drop', 'reject'].includes(ev.verdict ?? '') || NAT.test(ev.rule ?? '') || !!ev.comment);

export function nodeHops(obs: NodeObservation, idx: PolicyIndex, services: readonly Service[]): NodeHops {
  const { node, events } = obs;
  const packets = events.filter((e) => e.kind === 'packet' && e.packet).map((e) => e.packet!);
  const first = packets[0];
  const out: NodeHops = { hops: [] };
  if (!first) return out;
  const proto = first.protocol ?? 'icmp';
  out.hops.push({ node, kind: 'in', text: `in ${first.iif ?? '(local)'} (${interfaceOwner(idx, first.iif, first.saddr)}): ${endpointText(first.saddr, first.sport)} → ${endpointText(first.daddr, first.dport)} ${proto}` });
  events.forEach((ev, i) => {
    if (out.dropped) return;
    const dropVerdict = ev.verdict === 'drop' || ev.verdict === 'reject';
    if (ev.kind === 'policy' && dropVerdict) {
      out.dropped = { node, kind: 'drop', table: `${ev.family} ${ev.table}`, chain: ev.chain, verdict: 'drop', text: `DROPPED by the policy of chain ${ev.family} ${ev.table} ${ev.chain}` };
      out.hops.push(out.dropped);
      return;
    }
    if (!decides(ev)) return;
    let object = ruleObject(ev);
    if (/(^|\s)dnat\s/.test(ev.rule ?? '')) {
      // The endpoint chosen is the destination of the next hook's view of the packet.
      const after = events.slice(i + 1).find((e) => e.kind === 'packet' && e.packet)?.packet;
      const svc = findService(services, first.daddr, first.dport, proto, !!(first.daddr && nodeAt(idx, first.daddr)));
      if (after?.daddr) {
        const pod = podAt(idx, after.daddr);
        const ref = svc ? `Service ${objectRef(svc)}` : `DNAT of ${endpointText(first.daddr, first.dport)}`;
        object = `${ref} → endpoint ${pod ? `${objectRef(pod)} ` : ''}(${endpointText(after.daddr, after.dport)})`;
        out.service = { ref: svc ? objectRef(svc) : endpointText(first.daddr, first.dport), endpoint: endpointText(after.daddr, after.dport), ...(pod ? { endpointPod: objectRef(pod) } : {}) };
      }
    }
    const hop: Hop = { node, kind: dropVerdict ? 'drop' : 'rule', table: `${ev.family} ${ev.table}`, chain: ev.chain, verdict: ev.verdict,
      text: `${dropVerdict ? 'DROPPED by ' : ''}nft ${ev.family} ${ev.table} ${ev.chain}: ${ev.rule} (${ev.verdict})`, ...(object ? { object } : {}) };
    out.hops.push(hop);
    if (dropVerdict) out.dropped = hop;
  });
  out.last = packets[packets.length - 1];
  if (out.dropped) return out;
  if (obs.route) out.hops.push({ node, kind: 'route', text: routeText(obs.route, idx) });
  if (obs.conntrack) out.hops.push({ node, kind: 'conntrack', text: `conntrack ${obs.conntrack.protocol} ${obs.conntrack.state ?? ''} original ${tupleText(obs.conntrack.orig)}, reply ${tupleText(obs.conntrack.reply)}`.replace(/ {2,}/g, ' ') });
  const last = out.last;
  // Source NAT happens after the last traced hook: conntrack's reply tuple shows the address it took.
  const ct = obs.conntrack;
  const snat = ct && ct.reply.dst !== ct.orig.src ? `, source NAT to ${endpointText(ct.reply.dst, ct.reply.dport)}` : '';
  if (last?.oif) out.hops.push({ node, kind: 'out', text: `out ${last.oif} (${interfaceOwner(idx, last.oif, last.daddr)}): ${endpointText(last.saddr, last.sport)} → ${endpointText(last.daddr, last.dport)}${snat}` });
  return out;
}

/** The node a route leads to: the gateway's node, or the VXLAN remote's. */
export function routePeer(route: RouteFact, idx: PolicyIndex): string | undefined {
  const addr = route.vxlan?.remote ?? route.gateway;
  const n = addr ? nodeAt(idx, addr) : undefined;
  return n?.metadata.name;
}

export function routeText(route: RouteFact, idx: PolicyIndex): string {
  const peer = routePeer(route, idx);
  const head = `route ${route.dst}${route.gateway ? ` via ${route.gateway}` : ''} dev ${route.dev}`;
  if (route.vxlan) return `${head}: VXLAN vni ${route.vxlan.vni}, outer ${route.vxlan.local ?? '?'} → ${route.vxlan.remote ?? '?'}${peer ? ` (${peer})` : ''}`;
  if (route.dev.startsWith('fn')) return `${head}: local delivery to ${interfaceOwner(idx, route.dev, route.dst)}`;
  if (peer) return `${head}: direct to ${peer} on the segment`;
  return `${head}${route.gateway ? ': via a gateway that is no node (the router)' : ''}`;
}
