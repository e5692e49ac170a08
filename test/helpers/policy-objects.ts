// Small builders for NetworkPolicy tests: pods with named ports, namespaces with the name label, policies.
import type { Namespace, NetworkPolicy, Pod } from '../../src/api/types.js';

export function pod(ns: string, name: string, o: { node?: string; ip?: string; ip6?: string; labels?: Record<string, string>;
  ports?: Array<{ name?: string; port: number; protocol?: 'TCP' | 'UDP' }>; hostNetwork?: boolean } = {}): Pod {
  const ips = [o.ip, o.ip6].filter((x): x is string => !!x);
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: o.labels ?? { pod: name } },
    spec: { nodeName: o.node ?? 'node-1', ...(o.hostNetwork ? { hostNetwork: true } : {}),
      containers: [{ name: 'c', ports: (o.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.port, protocol: p.protocol ?? 'TCP' })) }] },
    status: { phase: 'Running', ...(ips.length ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}) },
  };
}

export function namespace(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } }, status: { phase: 'Active' } };
}

export function policy(ns: string, name: string, spec: Partial<NetworkPolicy['spec']>): NetworkPolicy {
  const policyTypes = spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] as Array<'Ingress' | 'Egress'> : ['Ingress'] as Array<'Ingress' | 'Egress'>);
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec: { podSelector: {}, ...spec, policyTypes } };
}
