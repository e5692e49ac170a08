// Gathers what `flatnet check` needs from the cluster's store and the lab's plan.
import { CLUSTER_CONFIG_KEY, ENDPOINTSLICE_PREFIX, NAMESPACE_PREFIX, NETWORKPOLICY_PREFIX, NODE_PREFIX, POD_PREFIX, SERVICE_PREFIX } from '../api/keys.js';
import { parseClusterConfig, podCIDRsOf, slicesByService, type EndpointSlice, type Namespace, type NetworkPolicy, type Node, type Pod, type Service } from '../api/types.js';
import type { Store } from '../store/store.js';
import { podNetns } from '../lab/pods.js';
import type { CheckInputs } from './model.js';
import type { CheckEndpoint, CheckService } from './services.js';
import { isPodReady, waitSettled } from './ready.js';
import { waitProxies } from './proxies.js';

export interface LabView {
  name: string;
  nodeNetns(node: string): string | undefined;
  external?: { netns: string; ip: string; ip6?: string };
}

/** How long the check waits for pods to be Ready before it probes (a kubectl user's `wait --for=condition=Ready`). */
export const READY_TIMEOUT_MS = 30_000;
/** How long it then waits for every node's service proxy to hold the Services' ready endpoints. */
export const PROXY_TIMEOUT_MS = 10_000;

const listOf = async <T>(store: Store, prefix: string): Promise<T[]> => (await store.list(prefix)).items.map((kv) => JSON.parse(kv.value) as T);

/** Waits (bounded) for the pods to be Ready and the EndpointSlices to follow, then reads what the check needs. */
export async function gatherInputs(store: Store, lab: LabView, opts: { readyTimeoutMs?: number; log?: (line: string) => void } = {}): Promise<CheckInputs> {
  const unready = await waitSettled(async () => ({
    pods: await listOf<Pod>(store, POD_PREFIX), services: await listOf<Service>(store, SERVICE_PREFIX), slices: await listOf<EndpointSlice>(store, ENDPOINTSLICE_PREFIX),
  }), opts.readyTimeoutMs ?? READY_TIMEOUT_MS, { log: opts.log });
  const cfgKv = await store.get(CLUSTER_CONFIG_KEY);
  const config = parseClusterConfig(cfgKv?.value);
  const nodes = (await store.list(NODE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Node);
  const pods = (await store.list(POD_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Pod);
  const inputs: CheckInputs = { clusterCIDRs: config.clusterCIDRs, nodes: [], pods: [], external: lab.external, unready };
  for (const n of nodes) {
    const netns = lab.nodeNetns(n.metadata.name);
    const internal = (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
    const ip = internal.find((a) => !a.includes(':'));
    if (!netns || !ip) continue;
    const nodeIPv6 = internal.find((a) => a.includes(':'));
    inputs.nodes.push({ name: n.metadata.name, nodeIP: ip, ...(nodeIPv6 ? { nodeIPv6 } : {}), podCIDRs: podCIDRsOf(n), netns });
  }
  for (const p of pods) {
    const netns = podNetns(lab.name, p, (node) => lab.nodeNetns(node));
    if (!netns || p.status?.phase !== 'Running') continue;
    inputs.pods.push({
      namespace: p.metadata.namespace ?? 'default',
      name: p.metadata.name,
      node: p.spec.nodeName!,
      ips: (p.status.podIPs ?? []).map((x) => x.ip),
      hostNetwork: !!p.spec.hostNetwork,
      netns,
      ready: isPodReady(p),
      containers: p.spec.containers.map((c) => ({
        name: c.name,
        ports: (c.ports ?? []).map((cp) => ({ port: cp.containerPort, protocol: (cp.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp' })),
      })),
    });
  }
  const services = (await store.list(SERVICE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Service);
  const slices = (await store.list(ENDPOINTSLICE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as EndpointSlice);
  inputs.services = checkServices(services, slices);
  await waitProxies(inputs.nodes, services, slices, PROXY_TIMEOUT_MS, { log: opts.log });
  // What NetworkPolicy is judged on (rule 11): the live objects, as every agent sees them.
  inputs.policy = { namespaces: await listOf<Namespace>(store, NAMESPACE_PREFIX), pods, policies: await listOf<NetworkPolicy>(store, NETWORKPOLICY_PREFIX), nodes };
  return inputs;
}

/** Services with a ClusterIP and a selector, each port with the ready endpoints its slices give it. */
export function checkServices(services: Service[], slices: EndpointSlice[]): CheckService[] {
  const out: CheckService[] = [];
  const bySvc = slicesByService(slices);
  for (const s of services) {
    if (!s.spec.clusterIP || s.spec.clusterIP === 'None' || !s.spec.selector) continue;
    const ns = s.metadata.namespace ?? 'default';
    const mine = bySvc.get(`${ns}/${s.metadata.name}`) ?? [];
    const endpoints = new Map<string, CheckEndpoint[]>();
    for (const p of s.spec.ports) {
      const eps: CheckEndpoint[] = [];
      for (const slice of mine) {
        const sp = slice.ports.find((x) => x.name === (p.name ?? '') && x.protocol === p.protocol);
        if (!sp) continue;
        for (const e of slice.endpoints) {
          if (!e.conditions.ready || !e.targetRef) continue;
          eps.push({ pod: `${e.targetRef.namespace}/${e.targetRef.name}`, ip: e.addresses[0], node: e.nodeName, port: sp.port });
        }
      }
      endpoints.set(p.name ?? '', eps);
    }
    out.push({
      id: `${ns}/${s.metadata.name}`, clusterIP: s.spec.clusterIP, type: s.spec.type,
      internalLocal: s.spec.internalTrafficPolicy === 'Local', externalLocal: s.spec.externalTrafficPolicy === 'Local', sticky: s.spec.sessionAffinity === 'ClientIP',
      ports: s.spec.ports.map((p) => ({ name: p.name ?? '', protocol: p.protocol === 'UDP' ? 'udp' : 'tcp', port: p.port, nodePort: p.nodePort })),
      endpoints,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
