// Policy judges a connection after Service DNAT: a pod reaching a ClusterIP or a NodePort is judged
// against the backend pod and its target port, as the nft policy table sees the packet (its filter
// hooks run after the proxy's nat prerouting/output). This turns a connection to a Service into the
// connections the proxy may make of it, one per backend, pure, so the caller judges each.
import { serviceId, slicesByService, type EndpointSlice, type Service } from '../api/types.js';
import { normalizeAddress } from './addresses.js';
import type { Connection } from './world.js';

/**
 * The connections `conn` becomes after DNAT. Not a Service address: [conn] unchanged. A ClusterIP
 * (any of clusterIPs) and port of a Service, or a NodePort on one of `nodeAddresses`: one connection
 * per backend the proxy picks from (the ready endpoints, else the serving terminating ones), in
 * address order; [] when it has none (the proxy refuses or drops it, whatever policy says).
 * internalTrafficPolicy/externalTrafficPolicy Local are not narrowed here: every backend is listed.
 */
export function afterDnat(services: readonly Service[], slices: readonly EndpointSlice[], conn: Connection,
  nodeAddresses: readonly string[] = []): Connection[] {
  if (conn.protocol !== 'TCP' && conn.protocol !== 'UDP') return [conn];
  const to = normalizeAddress(conn.to);
  if (to === undefined) return [conn];
  const toNode = nodeAddresses.some((a) => normalizeAddress(a) === to);
  const bySvc = slicesByService([...slices]);
  for (const svc of services) {
    const ips = (svc.spec.clusterIPs?.length ? svc.spec.clusterIPs : svc.spec.clusterIP ? [svc.spec.clusterIP] : [])
      .filter((ip) => ip !== 'None').map((ip) => normalizeAddress(ip));
    const port = svc.spec.ports.find((p) => p.protocol === conn.protocol
      && ((ips.includes(to) && p.port === conn.port)
        || (toNode && svc.spec.type === 'NodePort' && p.nodePort === conn.port)));
    if (!port) continue;
    const family = to.includes(':') ? 'IPv6' : 'IPv4';
    const backends = new Map<string, Connection>();
    const serving = new Map<string, Connection>();
    for (const slice of bySvc.get(serviceId(svc.metadata.namespace, svc.metadata.name)) ?? []) {
      // A NodePort reached on an IPv4 node address goes to IPv4 backends, as the proxy (IPv4 only) does.
      if (slice.addressType !== family) continue;
      const sp = slice.ports.find((p) => p.name === (port.name ?? '') && p.protocol === port.protocol);
      if (!sp) continue;
      for (const e of slice.endpoints) {
        const { ready, serving: isServing, terminating } = e.conditions;
        const into = ready ? backends : isServing && terminating ? serving : undefined;
        for (const ip of into ? e.addresses : []) {
          const addr = normalizeAddress(ip) ?? ip;
          into!.set(`${addr}:${sp.port}`, { from: conn.from, to: addr, port: sp.port, protocol: conn.protocol });
        }
      }
    }
    const picked = backends.size > 0 ? backends : serving;
    return [...picked.values()].sort((a, b) => compareAddr(a.to, b.to) || a.port - b.port);
  }
  return [conn];
}

function compareAddr(a: string, b: string): number {
  const key = (s: string) => s.includes(':') ? s : s.split('.').map((o) => o.padStart(3, '0')).join('.');
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}
