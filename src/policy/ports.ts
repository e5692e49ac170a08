// Which ports a rule's `ports` allow, pure. A named port means a number only on a given destination pod
// (the same name may be 8080 on one pod and 9090 on another, and absent on a third), so matching takes
// the destination pod; the nft renderer asks resolveNamedPort per pod to build `pod . proto . port`.
import type { NetworkPolicyPort, Pod } from '../api/types.js';

/** A connection's protocol; ICMP has no port (0). */
export type ConnProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP';

/**
 * The number a named port has on `pod`: its container port with that name and protocol (TCP when the
 * container port gives none). Undefined when the pod has no such port, or when there is no pod (an
 * address that is no pod's, a host-network pod) to resolve it on.
 */
export function resolveNamedPort(pod: Pod | undefined, name: string, protocol: ConnProtocol): number | undefined {
  if (!pod || pod.spec.hostNetwork) return undefined;
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (p.name === name && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/**
 * Whether one entry of a rule's `ports` allows (port, protocol) to `destination`. Its protocol must be
 * the connection's (so an SCTP entry never allows TCP or UDP, and no entry allows ICMP); no port means
 * every port of that protocol; `endPort` makes port..endPort, both ends included; a name is resolved
 * on the destination pod.
 */
export function portMatches(spec: NetworkPolicyPort, destination: Pod | undefined, port: number, protocol: ConnProtocol): boolean {
  if (protocol === 'ICMP' || (spec.protocol ?? 'TCP') !== protocol) return false;
  if (spec.port === undefined) return true;
  if (typeof spec.port === 'number') {
    return spec.endPort !== undefined ? spec.port <= port && port <= spec.endPort : spec.port === port;
  }
  // A stored number given as a string ("80") is that number, as the API's IntOrString parses it.
  if (/^\d+$/.test(spec.port)) return Number(spec.port) === port;
  return resolveNamedPort(destination, spec.port, protocol) === port;
}

/**
 * Whether a rule's `ports` allow the connection: absent or empty allows every port and protocol, ICMP
 * included; otherwise some entry must match (and ICMP, having no port, matches none).
 */
export function rulePortsMatch(ports: readonly NetworkPolicyPort[] | undefined, destination: Pod | undefined,
  port: number, protocol: ConnProtocol): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => portMatches(p, destination, port, protocol));
}

/** What one port entry names: every port of its protocol, a numeric range (one port: first = last), or a name. */
export type PortSpecKind =
  | { kind: 'all'; protocol: string }
  | { kind: 'range'; protocol: string; first: number; last: number }
  | { kind: 'named'; protocol: string; name: string };

/** The kind of a port entry, so the renderer sorts entries into numeric and named sets as portMatches reads them. */
export function portSpecKind(spec: NetworkPolicyPort): PortSpecKind {
  const protocol = spec.protocol ?? 'TCP';
  if (spec.port === undefined) return { kind: 'all', protocol };
  if (typeof spec.port === 'number') return { kind: 'range', protocol, first: spec.port, last: spec.endPort ?? spec.port };
  if (/^\d+$/.test(spec.port)) return { kind: 'range', protocol, first: Number(spec.port), last: Number(spec.port) };
  return { kind: 'named', protocol, name: spec.port };
}

/** A port entry as explain prints it: "tcp/80", "tcp/8000-8080", "tcp/http", "udp/*". */
export function formatPortSpec(p: NetworkPolicyPort): string {
  const proto = (p.protocol ?? 'TCP').toLowerCase();
  if (p.port === undefined) return `${proto}/*`;
  return p.endPort !== undefined ? `${proto}/${p.port}-${p.endPort}` : `${proto}/${p.port}`;
}
