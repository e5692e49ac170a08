// The kernel's reason for a packet no rule dropped and no node delivered, pure: where to ask (the node
// that last saw it, or the lab router when that node sent it to a gateway that is no node), the
// question (`ip route get DST from SRC iif DEV`: the input route lookup the packet went through), and
// the kernel's answer read as a reason: no route, an unreachable host, the reverse-path filter, or a
// route that exists whose neighbour failed.
import type { PolicyIndex } from '../policy/evaluate.js';
import { routePeer, type NodeObservation } from './hops.js';

export interface KernelReason {
  /** The node the packet was last seen on. */
  node: string;
  /** "no route to 10.244.2.2: Network is unreachable", "neighbour 10.100.0.12 on eth0 FAILED". */
  reason: string;
  /** The question and the kernel's answer, verbatim. */
  evidence: string;
  /** The namespace the kernel was asked in: the node's, or the router's. */
  askedIn: string;
  /** Where the kernel dropped it: on the node, or past it at the router its route leads to. */
  where: 'node' | 'router';
}

/** The route lookup to repeat: in the node's namespace, or the router's when the node sent it there. */
export interface ReasonQuestion {
  node: string;
  where: 'node' | 'router';
  dst: string;
  src: string;
  /** The device it came in on; for the router, found from the route back to the node. */
  iif?: string;
  /** The gateway the node's route sent it to (the router), when it went there. */
  gateway?: string;
}

/** What to ask about the last node's packet; undefined when the trace saw no addresses. */
export function reasonQuestion(obs: NodeObservation, idx: PolicyIndex): ReasonQuestion | undefined {
  const packets = obs.events.filter((e) => e.packet);
  const first = packets[0]?.packet;
  const last = packets[packets.length - 1]?.packet;
  const dst = last?.daddr;
  const src = last?.saddr ?? first?.saddr;
  if (!dst || !src) return undefined;
  // A route via a gateway that is no node leads to the lab router, which has no pod routes: ask there.
  if (obs.route?.gateway && !obs.route.vxlan && !routePeer(obs.route, idx)) return { node: obs.node, where: 'router', dst, src, gateway: obs.route.gateway };
  const iif = first?.iif;
  return { node: obs.node, where: 'node', dst, src, ...(iif ? { iif } : {}) };
}

/** The `ip route get` arguments of a question: input routing when the packet came in on a device. */
export function routeGetArgs(q: { dst: string; src: string; iif?: string }): string[] {
  return q.iif ? ['route', 'get', q.dst, 'from', q.src, 'iif', q.iif] : ['route', 'get', q.dst];
}

// The errno texts `ip route get` prints ("RTNETLINK answers: ..." or "Error: ...") and what they mean.
const ERRORS: Array<[RegExp, (q: { dst: string; src: string; iif?: string }) => string]> = [
  [/Network is unreachable/i, (q) => `no route to ${q.dst}`],
  [/No route to host/i, (q) => `no route to host ${q.dst} (an unreachable route, or forwarding is off)`],
  [/Invalid cross-device link/i, (q) => `reverse-path filter: ${q.src} is not routed back through ${q.iif ?? 'the incoming device'}`],
  [/Permission denied|Operation not permitted/i, (q) => `a prohibit route to ${q.dst}`],
];

/** The reason in an `ip route get` error; undefined when it is no error the lookup gives for a packet. */
export function parseRouteGetError(stderr: string, q: { dst: string; src: string; iif?: string }): string | undefined {
  const answer = stderr.trim().split('\n').map((l) => l.replace(/^(RTNETLINK answers|Error):\s*/, '').trim()).filter(Boolean).pop();
  if (!answer) return undefined;
  const match = ERRORS.find(([re]) => re.test(answer));
  return match ? `${match[1](q)}: ${answer}` : undefined;
}

/** A neighbour the route needs that failed to resolve: FAILED or INCOMPLETE in `ip -j neigh show`. */
export function neighbourFailure(entries: ReadonlyArray<{ dst?: string; state?: string[] }>, addr: string, dev: string): string | undefined {
  const bad = entries.find((e) => (e.dst ?? addr) === addr && (e.state ?? []).some((s) => s === 'FAILED' || s === 'INCOMPLETE'));
  return bad ? `neighbour ${addr} on ${dev} ${bad.state!.join(',')} (no answer to ARP)` : undefined;
}

/** Where a lost packet's kernel reason places the drop: "on node-1", "past node-1, at the router". */
export function lostWhere(k: KernelReason): string {
  return k.where === 'router' ? `past ${k.node}, at the router` : `on ${k.node}`;
}

/** The disagreement line of a lost packet, with the kernel's reason when it gave one. */
export function lostLine(node: string, k: KernelReason | undefined): string {
  const head = 'no rule dropped it, but it was not delivered: the kernel dropped it';
  if (!k) return `${head} on ${node} (no route, neighbour or reverse-path failure)`;
  return `${head} ${lostWhere(k)}: ${k.reason} (asked in ${k.askedIn}: ${k.evidence})`;
}
