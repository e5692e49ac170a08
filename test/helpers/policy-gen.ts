// Policy worlds for tests: builders (namespaces, nodes, pods with labels and named container ports,
// policies as stored after defaulting) and a seeded generator of random worlds and connections.
import type { ContainerPort, Namespace, NetworkPolicy, Node, Pod } from '../../src/api/types.js';
import type { PolicyWorld } from '../../src/policy/evaluate.js';

export const ns = (name: string, labels: Record<string, string> = {}): Namespace =>
  ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

export const node = (name: string, ip: string): Node =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {}, status: { addresses: [{ type: 'InternalIP', address: ip }] } });

export interface PodOptions {
  node?: string;
  labels?: Record<string, string>;
  ports?: ContainerPort[];
  hostNetwork?: boolean;
  terminating?: boolean;
}

/** A pod "ns/name" with its addresses (one, or several for dual stack). */
export function pod(ref: string, ips: string | string[], o: PodOptions = {}): Pod {
  const [namespace, name] = ref.split('/');
  const list = Array.isArray(ips) ? ips : [ips];
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, labels: o.labels ?? { pod: name }, ...(o.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { nodeName: o.node ?? 'n1', hostNetwork: o.hostNetwork, containers: [{ name: 'c', ports: o.ports ?? [] }] },
    status: { phase: 'Running', podIP: list[0], podIPs: list.map((ip) => ({ ip })) },
  };
}

/** A policy "ns/name"; policyTypes default as the API server sets them. */
export function policy(ref: string, spec: Partial<NetworkPolicy['spec']>): NetworkPolicy {
  const [namespace, name] = ref.split('/');
  const policyTypes = spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace },
    spec: { podSelector: {}, ...spec, policyTypes },
  };
}

export const world = (w: Partial<PolicyWorld>): PolicyWorld =>
  ({ namespaces: w.namespaces ?? [], pods: w.pods ?? [], policies: w.policies ?? [], nodes: w.nodes ?? [] });
