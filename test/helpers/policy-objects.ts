// The builders of policy-gen.ts in the shape the dataplane tests write them: namespace and name apart,
// one IPv4 and one IPv6 address by name, pods on "node-1" unless said otherwise.
import type { Namespace, NetworkPolicy, Pod } from '../../src/api/types.js';
import { ns, pod as genPod, policy as genPolicy } from './policy-gen.js';

export function pod(namespace: string, name: string, o: { node?: string; ip?: string; ip6?: string; labels?: Record<string, string>;
  ports?: Array<{ name?: string; port: number; protocol?: 'TCP' | 'UDP' }>; hostNetwork?: boolean } = {}): Pod {
  const ips = [o.ip, o.ip6].filter((x): x is string => !!x);
  const ports = (o.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.port, protocol: p.protocol ?? 'TCP' as const }));
  return genPod(`${namespace}/${name}`, ips, { node: o.node ?? 'node-1', labels: o.labels, ports, hostNetwork: o.hostNetwork });
}

export const namespace = (name: string, labels: Record<string, string> = {}): Namespace => ns(name, labels);

export const policy = (namespace: string, name: string, spec: Partial<NetworkPolicy['spec']>): NetworkPolicy => genPolicy(`${namespace}/${name}`, spec);
