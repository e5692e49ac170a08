// The page's picture of a lab as data: the three networks and the policy matrix, computed by pure
// functions from the store's objects and the lab's topology plan. The server sends it whole on every
// change (a lab holds tens of objects, so a full snapshot is cheaper to reason about than diffs).
import { podCIDRsOf, slicesByService, type EndpointSlice, type Namespace, type NetworkPolicy, type Node, type Pod, type Service } from '../api/types.js';
import { evaluateIn, indexWorld, objectRef } from '../policy/evaluate.js';
import { formatSelector } from '../policy/explain.js';

export interface UiSegment { name: string; subnet: string; routerAddress: string }
export interface UiNode { name: string; segment?: string; ip?: string; podCIDRs: string[]; alive: boolean }
export interface UiPod {
  id: string; namespace: string; name: string; node?: string; ips: string[]; phase: string;
  hostNetwork: boolean; labels: Record<string, string>; containers: Array<{ name: string; ports: string[] }>;
}
export interface UiEndpoint { ip: string; pod?: string; ready: boolean }
export interface UiService {
  id: string; namespace: string; name: string; type: string; clusterIP?: string;
  ports: Array<{ port: number; protocol: string; nodePort?: number; targetPort: string }>; endpoints: UiEndpoint[];
}
export interface UiPolicy { id: string; podSelector: string; policyTypes: string[]; ingressRules: number; egressRules: number }
/** One ordered pod pair the policies deny, on the destination's first declared port. */
export interface UiDenied { from: string; to: string; port: number; protocol: string; isolatedBy: string[] }
export interface UiModel {
  lab: string; backend: string; clusterCIDR: string; revision: number;
  router: string; external?: { ip: string }; segments: UiSegment[];
  nodes: UiNode[]; pods: UiPod[]; services: UiService[]; policies: UiPolicy[]; denied: UiDenied[];
}

/** What the model is computed from: the lab's plan (node network) and the store's objects. */
export interface UiInputs {
  lab: string; backend: string; clusterCIDR: string; revision: number;
  router: string; external?: { ip: string }; segments: UiSegment[];
  planNodes: Array<{ name: string; segment: string; ip: string }>;
  nodes: Node[]; alive: Set<string>; pods: Pod[]; services: Service[]; slices: EndpointSlice[];
  namespaces: Namespace[]; policies: NetworkPolicy[];
}

/** The matrix costs pods² evaluations: past this many pods the page shows the policies only. */
export const MATRIX_MAX_PODS = 60;

export function buildModel(inp: UiInputs): UiModel {
  const nodeNames = new Set([...inp.planNodes.map((n) => n.name), ...inp.nodes.map((n) => n.metadata.name)]);
  const nodes: UiNode[] = [...nodeNames].sort().map((name) => {
    const plan = inp.planNodes.find((n) => n.name === name);
    const obj = inp.nodes.find((n) => n.metadata.name === name);
    const ip = obj?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? plan?.ip;
    return { name, segment: plan?.segment, ip, podCIDRs: podCIDRsOf(obj), alive: inp.alive.has(name) };
  });
  const pods = inp.pods.map(uiPod).sort((a, b) => a.id.localeCompare(b.id));
  return {
    lab: inp.lab, backend: inp.backend, clusterCIDR: inp.clusterCIDR, revision: inp.revision,
    router: inp.router, external: inp.external, segments: inp.segments,
    nodes, pods, services: uiServices(inp.services, inp.slices), policies: inp.policies.map(uiPolicy).sort((a, b) => a.id.localeCompare(b.id)),
    denied: deniedPairs(inp),
  };
}

function uiPod(p: Pod): UiPod {
  const ips = (p.status?.podIPs ?? []).map((x) => x.ip);
  if (ips.length === 0 && p.status?.podIP) ips.push(p.status.podIP);
  return {
    id: objectRef(p), namespace: p.metadata.namespace ?? 'default', name: p.metadata.name, node: p.spec.nodeName, ips,
    phase: p.status?.phase ?? 'Pending', hostNetwork: !!p.spec.hostNetwork, labels: p.metadata.labels ?? {},
    containers: p.spec.containers.map((c) => ({ name: c.name, ports: (c.ports ?? []).map((cp) => `${cp.containerPort}/${cp.protocol ?? 'TCP'}${cp.name ? ` (${cp.name})` : ''}`) })),
  };
}

function uiServices(services: Service[], slices: EndpointSlice[]): UiService[] {
  const bySvc = slicesByService(slices);
  return services.map((s) => {
    const id = objectRef(s);
    const endpoints: UiEndpoint[] = [];
    for (const slice of bySvc.get(id) ?? []) {
      for (const e of slice.endpoints) {
        for (const ip of e.addresses) {
          const ref = e.targetRef;
          endpoints.push({ ip, ready: e.conditions.ready, ...(ref ? { pod: `${ref.namespace}/${ref.name}` } : {}) });
        }
      }
    }
    return {
      id, namespace: s.metadata.namespace ?? 'default', name: s.metadata.name, type: s.spec.type, clusterIP: s.spec.clusterIP,
      ports: s.spec.ports.map((p) => ({ port: p.port, protocol: p.protocol, targetPort: String(p.targetPort), ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
      endpoints: endpoints.sort((a, b) => a.ip.localeCompare(b.ip)),
    };
  }).sort((a, b) => a.id.localeCompare(b.id));
}

function uiPolicy(p: NetworkPolicy): UiPolicy {
  return {
    id: objectRef(p), podSelector: formatSelector(p.spec.podSelector), policyTypes: p.spec.policyTypes,
    ingressRules: p.spec.ingress?.length ?? 0, egressRules: p.spec.egress?.length ?? 0,
  };
}

/** Every ordered pair of running pod-network pods the evaluator denies, judged on the destination's first port. */
function deniedPairs(inp: UiInputs): UiDenied[] {
  if (inp.policies.length === 0) return [];
  const pods = inp.pods.filter((p) => !p.spec.hostNetwork && p.status?.podIP && p.status.phase === 'Running');
  if (pods.length > MATRIX_MAX_PODS) return [];
  const idx = indexWorld({ namespaces: inp.namespaces, pods: inp.pods, policies: inp.policies, nodes: inp.nodes });
  const out: UiDenied[] = [];
  for (const dst of pods) {
    const cp = dst.spec.containers.flatMap((c) => c.ports ?? [])[0];
    const port = cp?.containerPort ?? 80;
    const protocol = cp?.protocol ?? 'TCP';
    for (const src of pods) {
      if (src === dst) continue;
      const v = evaluateIn(idx, { from: src.status!.podIP!, to: dst.status!.podIP!, port, protocol });
      if (v.allowed) continue;
      const isolatedBy = [...(v.egress.allowed ? [] : v.egress.isolatedBy), ...(v.ingress.allowed ? [] : v.ingress.isolatedBy)];
      out.push({ from: objectRef(src), to: objectRef(dst), port, protocol, isolatedBy });
    }
  }
  return out;
}
