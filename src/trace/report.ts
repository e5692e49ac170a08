// A trace's report, pure: the observed hops of every node in path order, the path flatnet expected from
// the rendered state (the Service's endpoints, the policy evaluator, the node that owns the
// destination), and every point where the two disagree. Text one hop a line, or the object as JSON.
import type { EndpointSlice, Service } from '../api/types.js';
import { afterDnat, evaluateIn, indexWorld, nodeAt, objectRef, podAt, type ConnProtocol, type PolicyWorld } from '../policy/evaluate.js';
import { nodeHops, routePeer, type Hop, type NodeObservation, type RouteFact } from './hops.js';
import type { ProbeResult, TraceProtocol } from './kernel.js';
import { lostLine, lostWhere, type KernelReason } from './reason.js';

export interface TraceEnd { label: string; address: string; node?: string }

export interface TraceRequest {
  from: TraceEnd;
  to: TraceEnd;
  port: number;
  protocol: TraceProtocol;
  tag: number;
}

export interface TraceReport {
  request: TraceRequest;
  hops: Hop[];
  /** lost: no rule dropped it, yet no node handed it to a pod (the kernel dropped it: no route, no neighbour...). */
  outcome: 'delivered' | 'dropped' | 'lost' | 'no trace';
  droppedBy?: Hop;
  /** For a lost packet: the kernel's answer to its route lookup where it was last seen. */
  kernelReason?: KernelReason;
  service?: { ref: string; endpoint: string; endpointPod?: string };
  probe: ProbeResult;
  expected: string[];
  disagreements: string[];
}

export interface TraceWorld { world: PolicyWorld; services: Service[]; slices: EndpointSlice[] }

export function buildReport(req: TraceRequest, observations: NodeObservation[], probe: ProbeResult, objects: TraceWorld): TraceReport {
  const idx = indexWorld(objects.world);
  // Path order: the first node, then the rest as the routes lead.
  const byNode = new Map(observations.filter((o) => o.events.length).map((o) => [o.node, o]));
  const order: string[] = [];
  // The first node is the source's, else the one that saw the packet with its original source address.
  const sawOriginal = [...byNode.values()].find((o) => o.events.find((e) => e.packet)?.packet?.saddr === req.from.address)?.node;
  let at: string | undefined = req.from.node && byNode.has(req.from.node) ? req.from.node : sawOriginal ?? [...byNode.keys()][0];
  while (at !== undefined) {
    order.push(at);
    const route: RouteFact | undefined = byNode.get(at)!.route;
    const next: string | undefined = route ? routePeer(route, idx) : undefined;
    at = next && byNode.has(next) && !order.includes(next) ? next : [...byNode.keys()].find((n) => !order.includes(n));
  }
  const hops: Hop[] = [];
  let dropped: Hop | undefined;
  let service: TraceReport['service'];
  let lastDst: string | undefined;
  let lastOif: string | undefined;
  for (const node of order) {
    const h = nodeHops(byNode.get(node)!, idx, objects.services);
    hops.push(...h.hops);
    service ??= h.service;
    if (h.last?.daddr) lastDst = h.last.daddr;
    lastOif = h.last?.oif;
    if (h.dropped) { dropped = h.dropped; break; }
  }
  // Delivered: handed to a pod's veth, taken in by the node it was for, or on its way out for an address that is no pod.
  const handed = lastOif?.startsWith('fn') || (lastDst !== undefined && (!!nodeAt(idx, lastDst) || (!podAt(idx, lastDst) && lastOif !== undefined)));
  const outcome: TraceReport['outcome'] = hops.length === 0 ? 'no trace' : dropped ? 'dropped' : handed ? 'delivered' : 'lost';
  const report: TraceReport = { request: req, hops, outcome, probe, expected: [], disagreements: [], ...(dropped ? { droppedBy: dropped } : {}), ...(service ? { service } : {}) };
  expect(report, order, lastDst, objects, idx);
  return report;
}

/** The expected path from the rendered state, and where the observed one departs from it. */
function expect(r: TraceReport, order: string[], lastDst: string | undefined, objects: TraceWorld, idx: ReturnType<typeof indexWorld>): void {
  const { request: req } = r;
  const protocol = req.protocol.toUpperCase() as ConnProtocol;
  const conn = { from: req.from.address, to: req.to.address, port: req.protocol === 'icmp' ? 0 : req.port, protocol };
  const nodeIPs = objects.world.nodes.flatMap((n) => (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address));
  const backends = afterDnat(objects.services, objects.slices, conn, nodeIPs);
  const isService = backends.length !== 1 || backends[0].to !== conn.to || backends[0].port !== conn.port;
  if (isService) {
    r.expected.push(`DNAT to one of ${backends.length ? backends.map((b) => `${b.to}:${b.port}`).join(', ') : '(no endpoints: the proxy drops or refuses it)'}`);
    const chosen = r.service?.endpoint;
    if (chosen && !backends.some((b) => `${b.to}:${b.port}` === chosen)) r.disagreements.push(`the proxy chose ${chosen}, which is no endpoint of the Service`);
    if (!chosen && r.outcome !== 'no trace' && backends.length) r.disagreements.push('no DNAT seen for a Service address');
  }
  // Judge the connection the packet became: the chosen endpoint, else the one the evaluator would pick first.
  const [addr, port] = (r.service?.endpoint ?? `${(backends[0] ?? conn).to}:${(backends[0] ?? conn).port}`).split(':');
  const real = { ...conn, to: addr, port: Number(port) || conn.port };
  const dstPod = podAt(idx, real.to);
  const v = evaluateIn(idx, real);
  const expectedNode = dstPod?.spec.nodeName;
  if (expectedNode) {
    const path = !req.from.node ? `→ ${expectedNode}` : req.from.node !== expectedNode ? `${req.from.node} → ${expectedNode}` : `${expectedNode} (same node)`;
    r.expected.push(`route ${path}, delivered to ${objectRef(dstPod!)}'s veth`);
  }
  r.expected.push(v.allowed ? `policy allows (${([['egress', v.egress], ['ingress', v.ingress]] as const).map(([dir, d]) => `${dir}: ${d.allowedBy ? `${d.allowedBy.policy} rule ${d.allowedBy.rule}` : d.always ?? 'not isolated'}`).join('; ')})`
    : `policy drops: ${[v.egress, v.ingress].filter((d) => !d.allowed).map((d) => `isolated by ${d.isolatedBy.join(', ')}; no policy allows`).join('; ')}`);
  if (r.outcome === 'no trace') { r.disagreements.push('no node saw the tagged packet'); return; }
  const policyDrop = r.droppedBy?.object?.startsWith('NetworkPolicy') ?? false;
  if (v.allowed && r.outcome === 'dropped') r.disagreements.push(`policy allows it, but it was dropped on ${r.droppedBy!.node}: ${r.droppedBy!.text}`);
  if (!v.allowed && !policyDrop) r.disagreements.push(`policy should drop it, ${r.outcome === 'dropped' ? `but ${r.droppedBy!.text}` : 'but it went through'}`);
  if (!v.allowed && policyDrop) {
    const named = [v.egress, v.ingress].filter((d) => !d.allowed).flatMap((d) => d.isolatedBy);
    if (!named.some((p) => r.droppedBy!.object!.includes(p))) r.disagreements.push(`dropped by ${r.droppedBy!.object}, the evaluator names ${named.join(', ')}`);
  }
  if (r.outcome === 'lost') r.disagreements.push(lostLine(order[order.length - 1], undefined));
  if (expectedNode && r.outcome !== 'dropped') {
    if (!order.includes(expectedNode)) r.disagreements.push(`the packet never reached ${expectedNode} (it went ${order.join(' → ')})`);
    else if (order[order.length - 1] !== expectedNode) r.disagreements.push(`the packet went on past ${expectedNode}: ${order.join(' → ')}`);
    if (lastDst && lastDst !== real.to) r.disagreements.push(`the packet left for ${lastDst}, expected ${real.to}`);
  }
}

/** The node a lost packet was last seen on: the last of the path. */
export function lastNode(r: TraceReport): string | undefined {
  return r.hops[r.hops.length - 1]?.node;
}

/** The report with the kernel's reason for a lost packet, in its field and its disagreement line. */
export function withKernelReason(r: TraceReport, k: KernelReason): TraceReport {
  const plain = lostLine(k.node, undefined);
  return { ...r, kernelReason: k, disagreements: r.disagreements.map((d) => (d === plain ? lostLine(k.node, k) : d)) };
}

/** Human text: a heading, one hop a line, the expectation and the disagreements. */
export function formatReport(r: TraceReport): string {
  const q = r.request;
  const lines = [`trace ${q.from.label} (${q.from.address}) → ${q.to.label} (${q.to.address}${q.protocol === 'icmp' ? '' : `:${q.port}`}) ${q.protocol}, tag ${q.protocol === 'icmp' ? 'echo id' : 'source port'} ${q.tag}`];
  const width = Math.max(4, ...r.hops.map((h) => h.node.length));
  r.hops.forEach((h, i) => lines.push(`${String(i + 1).padStart(3)}  ${h.node.padEnd(width)}  ${h.text}${h.object ? `  [${h.object}]` : ''}`));
  const k = r.kernelReason;
  const where = r.droppedBy ? ` on ${r.droppedBy.node}` : k ? ` ${lostWhere(k)} (kernel: ${k.reason}, asked in ${k.askedIn})` : '';
  lines.push(`result: ${r.outcome}${where}; the sender saw: ${r.probe.detail}`);
  for (const e of r.expected) lines.push(`expected: ${e}`);
  if (r.disagreements.length === 0) lines.push('agrees with the rendered state');
  for (const d of r.disagreements) lines.push(`DISAGREES: ${d}`);
  return lines.join('\n');
}
