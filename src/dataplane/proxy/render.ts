// The service proxy as data, pure: Services and EndpointSlices in, the elements of the proxy table's
// maps and sets out. The table's chains are fixed (skeleton.ts); what changes with the cluster is only
// elements, so a change to one Service is a handful of element adds and deletes in one transaction.
//
// Picking an endpoint at random with equal weight, for any endpoint count, without a chain per
// Service: a Service with N endpoints jumps to the shared chain `pick-N`, which DNATs through one map
// keyed by (ClusterIP, protocol, port, `numgen random mod N`). One chain per distinct count, not per
// Service (about 0.4 s for 10,000 Services, where a chain per Service and endpoint took 87 s).
import { serviceId, slicesByService, type EndpointSlice, type Service } from '../../api/types.js';

/** Maps and sets of the proxy table; each element is `key` → `value` ('' for a set). */
export const PROXY_MAPS = [
  'services', 'endpoints', 'no-endpoints', 'affinity-services', 'affinity-timeouts',
  'nodeports', 'nodeport-endpoints', 'nodeport-no-endpoints', 'nodeport-masq', 'hairpin',
] as const;
export type ProxyMap = typeof PROXY_MAPS[number];

export interface ProxyInputs {
  nodeName: string;
  /** This node's addresses: NodePort session affinity is remembered per (client, node address, port). */
  nodeIPs: string[];
  services: Service[];
  slices: EndpointSlice[];
}

export interface ProxyPlan {
  elements: Record<ProxyMap, Map<string, string>>;
  /** The endpoint counts in use: each needs its chains pick-N and np-pick-N. */
  counts: Set<number>;
  /** Session-affinity timeouts in use (seconds): each needs its chain aff-T. */
  affinityTimeouts: Set<number>;
}

interface Backend { ip: string; port: number; local: boolean; ready: boolean }

const ipKey = (ip: string) => ip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
const proto = (p: 'TCP' | 'UDP') => (p === 'TCP' ? 'tcp' : 'udp');

/**
 * Endpoints of a Service port that can take traffic, deduplicated and sorted, so equal inputs give
 * equal elements: the ready ones, and the terminating ones that still serve (kept apart by `ready`).
 */
function backends(portName: string, protocol: 'TCP' | 'UDP', slices: EndpointSlice[], nodeName: string): Backend[] {
  const seen = new Map<string, Backend>();
  for (const slice of slices) {
    const port = slice.ports.find((p) => p.name === portName && p.protocol === protocol);
    if (!port || slice.addressType !== 'IPv4') continue;
    for (const e of slice.endpoints) {
      const { ready, serving, terminating } = e.conditions;
      if (!ready && !(serving && terminating)) continue;
      for (const ip of e.addresses) seen.set(`${ip}:${port.port}`, { ip, port: port.port, local: e.nodeName === nodeName, ready });
    }
  }
  return [...seen.values()].sort((a, b) => ipKey(a.ip) - ipKey(b.ip) || a.port - b.port);
}

/**
 * Where new connections go, as kube-proxy picks: the ready endpoints; when none is ready, the
 * terminating ones still serving, so a Service whose pods are all draining keeps answering.
 */
function usable(list: Backend[]): Backend[] {
  const ready = list.filter((b) => b.ready);
  return ready.length > 0 ? ready : list;
}

/** What one Service puts into the table: its elements, and the shared things it needs. */
export interface ServiceFragment {
  elements: Array<[ProxyMap, string, string]>;
  /** Endpoint counts it jumps to (pick-N, np-pick-N). */
  counts: number[];
  /** Affinity timeouts it jumps to (aff-T). */
  timeouts: number[];
  /** Its endpoints on this node: each may reach itself through the Service (hairpin). */
  localIPs: string[];
}

export interface NodeView { nodeName: string; nodeIPs: string[] }

/** One Service seen from one node, with its EndpointSlices (in the order they are listed). */
export function renderService(svc: Service, slices: EndpointSlice[], node: NodeView): ServiceFragment {
  const out: ServiceFragment = { elements: [], counts: [], timeouts: [], localIPs: [] };
  const clusterIP = svc.spec.clusterIP;
  if (!clusterIP || clusterIP === 'None') return out;
  const set = (m: ProxyMap, k: string, v: string) => out.elements.push([m, k, v]);
  const local = new Set<string>();
  for (const port of svc.spec.ports) {
    const listed = backends(port.name ?? '', port.protocol, slices, node.nodeName);
    for (const b of listed) if (b.local) local.add(b.ip);
    const all = usable(listed);

    // ClusterIP: internalTrafficPolicy Local keeps traffic on this node's endpoints, and drops it
    // when there are none here (as kube-proxy does), rather than rejecting.
    const key = `${clusterIP} . ${proto(port.protocol)} . ${port.port}`;
    const internal = svc.spec.internalTrafficPolicy === 'Local' ? usable(listed.filter((b) => b.local)) : all;
    if (internal.length > 0) {
      out.counts.push(internal.length);
      set('services', key, `goto pick-${internal.length}`);
      internal.forEach((b, i) => set('endpoints', `${key} . ${i}`, `${b.ip} . ${b.port}`));
      if (svc.spec.sessionAffinity === 'ClientIP') {
        const timeout = svc.spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? 10800;
        out.timeouts.push(timeout);
        set('affinity-services', key, '');
        set('affinity-timeouts', key, `jump aff-${timeout}`);
      }
    } else {
      set('no-endpoints', key, svc.spec.internalTrafficPolicy === 'Local' && all.length > 0 ? 'drop' : 'goto refuse');
    }

    // NodePort: externalTrafficPolicy Local serves only from this node's endpoints and keeps the
    // client's address (no masquerade); a node with none drops, so a load balancer's health check fails over.
    if (svc.spec.type !== 'NodePort' || port.nodePort === undefined) continue;
    const npKey = `${proto(port.protocol)} . ${port.nodePort}`;
    const localPolicy = svc.spec.externalTrafficPolicy === 'Local';
    const external = localPolicy ? usable(listed.filter((b) => b.local)) : all;
    if (external.length > 0) {
      out.counts.push(external.length);
      set('nodeports', npKey, `goto np-pick-${external.length}`);
      external.forEach((b, i) => set('nodeport-endpoints', `${npKey} . ${i}`, `${b.ip} . ${b.port}`));
    } else {
      set('nodeport-no-endpoints', npKey, localPolicy && all.length > 0 ? 'drop' : 'goto refuse');
    }
    if (!localPolicy) set('nodeport-masq', npKey, '');
    if (external.length > 0 && svc.spec.sessionAffinity === 'ClientIP') {
      const timeout = svc.spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? 10800;
      out.timeouts.push(timeout);
      for (const ip of node.nodeIPs) {
        set('affinity-services', `${ip} . ${npKey}`, '');
        set('affinity-timeouts', `${ip} . ${npKey}`, `jump aff-${timeout}`);
      }
    }
  }
  out.localIPs = [...local];
  return out;
}

/** A pod reaching its own Service may be sent to itself: masquerade, or its reply would skip the DNAT. */
export const hairpinKey = (ip: string) => `${ip} . ${ip}`;

export const emptyElements = (): Record<ProxyMap, Map<string, string>> =>
  Object.fromEntries(PROXY_MAPS.map((m) => [m, new Map<string, string>()])) as Record<ProxyMap, Map<string, string>>;

/** The whole table from scratch; the agent keeps it up to date per Service instead (state.ts). */
export function renderProxy(inp: ProxyInputs): ProxyPlan {
  const elements = emptyElements();
  const counts = new Set<number>();
  const affinityTimeouts = new Set<number>();
  const bySvc = slicesByService(inp.slices);
  const localIPs = new Set<string>();
  for (const svc of inp.services) {
    const f = renderService(svc, bySvc.get(serviceId(svc.metadata.namespace, svc.metadata.name)) ?? [], inp);
    for (const [m, k, v] of f.elements) elements[m].set(k, v);
    for (const c of f.counts) counts.add(c);
    for (const t of f.timeouts) affinityTimeouts.add(t);
    for (const ip of f.localIPs) localIPs.add(ip);
  }
  for (const ip of [...localIPs].sort((a, b) => ipKey(a) - ipKey(b))) elements.hairpin.set(hairpinKey(ip), '');
  return { elements, counts, affinityTimeouts };
}
