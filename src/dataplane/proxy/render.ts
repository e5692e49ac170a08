// The service proxy as data, pure: Services and EndpointSlices in, the elements of the proxy table's
// maps and sets out. The table's chains are fixed (skeleton.ts); what changes with the cluster is only
// elements, so a change to one Service is a handful of element adds and deletes in one transaction.
//
// Picking an endpoint at random with equal weight, for any endpoint count, without a chain per
// Service: a Service with N endpoints jumps to the shared chain `pick-N`, which DNATs through one map
// keyed by (ClusterIP, protocol, port, `numgen random mod N`). One chain per distinct count, not per
// Service (about 0.4 s for 10,000 Services, where a chain per Service and endpoint took 87 s).
import { slicesByService, type EndpointSlice, type Service } from '../../api/types.js';

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

interface Backend { ip: string; port: number; local: boolean }

const ipKey = (ip: string) => ip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
const proto = (p: 'TCP' | 'UDP') => (p === 'TCP' ? 'tcp' : 'udp');

/** Ready endpoints of a Service port, deduplicated and sorted, so equal inputs give equal elements. */
function backends(service: Service, portName: string, protocol: 'TCP' | 'UDP', slices: EndpointSlice[], nodeName: string): Backend[] {
  const seen = new Map<string, Backend>();
  for (const slice of slices) {
    const port = slice.ports.find((p) => p.name === portName && p.protocol === protocol);
    if (!port || slice.addressType !== 'IPv4') continue;
    for (const e of slice.endpoints) {
      if (!e.conditions.ready) continue;
      for (const ip of e.addresses) seen.set(`${ip}:${port.port}`, { ip, port: port.port, local: e.nodeName === nodeName });
    }
  }
  return [...seen.values()].sort((a, b) => ipKey(a.ip) - ipKey(b.ip) || a.port - b.port);
}

export function renderProxy(inp: ProxyInputs): ProxyPlan {
  const elements = Object.fromEntries(PROXY_MAPS.map((m) => [m, new Map<string, string>()])) as Record<ProxyMap, Map<string, string>>;
  const counts = new Set<number>();
  const affinityTimeouts = new Set<number>();
  const bySvc = slicesByService(inp.slices);
  const localIPs = new Set<string>();

  for (const svc of inp.services) {
    const clusterIP = svc.spec.clusterIP;
    if (!clusterIP || clusterIP === 'None') continue;
    const slices = bySvc.get(`${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`) ?? [];
    for (const port of svc.spec.ports) {
      const all = backends(svc, port.name ?? '', port.protocol, slices, inp.nodeName);
      for (const b of all) if (b.local) localIPs.add(b.ip);

      // ClusterIP: internalTrafficPolicy Local keeps traffic on this node's endpoints, and drops it
      // when there are none here (as kube-proxy does), rather than rejecting.
      const key = `${clusterIP} . ${proto(port.protocol)} . ${port.port}`;
      const internal = svc.spec.internalTrafficPolicy === 'Local' ? all.filter((b) => b.local) : all;
      if (internal.length > 0) {
        counts.add(internal.length);
        elements.services.set(key, `goto pick-${internal.length}`);
        internal.forEach((b, i) => elements.endpoints.set(`${key} . ${i}`, `${b.ip} . ${b.port}`));
        if (svc.spec.sessionAffinity === 'ClientIP') {
          const timeout = svc.spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? 10800;
          affinityTimeouts.add(timeout);
          elements['affinity-services'].set(key, '');
          elements['affinity-timeouts'].set(key, `jump aff-${timeout}`);
        }
      } else {
        elements['no-endpoints'].set(key, svc.spec.internalTrafficPolicy === 'Local' && all.length > 0 ? 'drop' : 'goto refuse');
      }

      // NodePort: externalTrafficPolicy Local serves only from this node's endpoints and keeps the
      // client's address (no masquerade); a node with none drops, so a load balancer's health check fails over.
      if (svc.spec.type !== 'NodePort' || port.nodePort === undefined) continue;
      const npKey = `${proto(port.protocol)} . ${port.nodePort}`;
      const local = svc.spec.externalTrafficPolicy === 'Local';
      const external = local ? all.filter((b) => b.local) : all;
      if (external.length > 0) {
        counts.add(external.length);
        elements.nodeports.set(npKey, `goto np-pick-${external.length}`);
        external.forEach((b, i) => elements['nodeport-endpoints'].set(`${npKey} . ${i}`, `${b.ip} . ${b.port}`));
      } else {
        elements['nodeport-no-endpoints'].set(npKey, local && all.length > 0 ? 'drop' : 'goto refuse');
      }
      if (!local) elements['nodeport-masq'].set(npKey, '');
      if (external.length > 0 && svc.spec.sessionAffinity === 'ClientIP') {
        const timeout = svc.spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? 10800;
        affinityTimeouts.add(timeout);
        for (const ip of inp.nodeIPs) {
          elements['affinity-services'].set(`${ip} . ${npKey}`, '');
          elements['affinity-timeouts'].set(`${ip} . ${npKey}`, `jump aff-${timeout}`);
        }
      }
    }
  }
  // A pod reaching its own Service may be sent to itself: masquerade, or its reply would skip the DNAT.
  for (const ip of [...localIPs].sort((a, b) => ipKey(a) - ipKey(b))) elements.hairpin.set(`${ip} . ${ip}`, '');
  return { elements, counts, affinityTimeouts };
}
