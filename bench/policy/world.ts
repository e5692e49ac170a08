// The synthetic cluster both rulesets are loaded with: 20 namespaces of 10 pods on one node, and a
// seeded generator of N NetworkPolicies in a realistic mix (default deny, allow from a namespace, pod
// AND namespace selectors, named ports, port ranges, ipBlocks with except, egress with DNS). Selectors
// come from a small vocabulary, as real clusters' do (app/tier/team/env labels): that keeps the distinct
// peer selectors ~130, so the reference can share one ipset per selector within the kernel's 256.
import type { LabelSelector, Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Node, Pod } from '../../src/api/types.js';

export const NODE_NAME = 'node-0';
export const NAMESPACES = 20;
export const PODS_PER_NAMESPACE = 10;
/** Every pod listens on these TCP ports. */
export const SERVE_PORTS = [8080, 9090];
/** Probe connects go to this port, which the `zz-bench-probe` policies allow. */
export const PROBE_PORT = 8080;
export const PROBE_POLICY = 'zz-bench-probe';

export interface PolicyWorld { namespaces: Namespace[]; pods: Pod[]; policies: NetworkPolicy[]; nodes: Node[] }

/** mulberry32: small, seeded, the same sequence on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const TEAMS = ['payments', 'search', 'ads', 'infra', 'web'];
const nsName = (i: number) => `ns-${String(i).padStart(2, '0')}`;
const env = (i: number) => (i < 10 ? 'prod' : i < 15 ? 'staging' : 'dev');

/** App of pod k in its namespace: 3 web, 3 api, 1 db, 1 cache, 2 worker. */
const APPS = ['web', 'web', 'web', 'api', 'api', 'api', 'db', 'cache', 'worker', 'worker'];
const TIER: Record<string, string> = { web: 'frontend', api: 'backend', worker: 'backend', db: 'data', cache: 'data' };

/** Pod address: 10.244.1.10 upward (the node's /24); the added pod is index 200. */
export const podIP = (index: number) => `10.244.1.${10 + index}`;
export const ADDED_POD_INDEX = NAMESPACES * PODS_PER_NAMESPACE;

/** `http` is 8080 on most pods and 9090 on cache pods: a named port that means two numbers. */
function containerPorts(app: string) {
  if (app === 'db') return [{ name: 'sql', containerPort: 8080, protocol: 'TCP' as const }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' as const }];
  if (app === 'cache') return [{ name: 'http', containerPort: 9090, protocol: 'TCP' as const }, { name: 'admin', containerPort: 8080, protocol: 'TCP' as const }];
  return [{ name: 'http', containerPort: 8080, protocol: 'TCP' as const }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' as const }];
}

export function makePod(index: number, labels?: Record<string, string>): Pod {
  const ns = Math.floor(index / PODS_PER_NAMESPACE) % NAMESPACES;
  const k = index % PODS_PER_NAMESPACE;
  const app = APPS[k];
  const l: Record<string, string> = labels ?? { app, tier: TIER[app], version: k % 2 === 0 ? 'v1' : 'v2' };
  // The first pod of each namespace is a probe client (the bench's connects start there).
  if (!labels && k === 0 && index < ADDED_POD_INDEX) l.bench = 'client';
  const ip = podIP(index);
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: `${app}-${index}`, namespace: nsName(ns), labels: l, uid: `uid-${index}` },
    spec: { nodeName: NODE_NAME, containers: [{ name: 'main', image: 'bench', ports: containerPorts(app) }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.18.0.2', hostIPs: [{ ip: '172.18.0.2' }] },
  };
}

function namespace(i: number): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(i), labels: { team: TEAMS[i % TEAMS.length], env: env(i), 'kubernetes.io/metadata.name': nsName(i) } } };
}

const NODE: Node = {
  apiVersion: 'v1', kind: 'Node', metadata: { name: NODE_NAME },
  spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
  status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] },
} as Node;

// The selector vocabulary.
const TARGETS: LabelSelector[] = [
  {}, { matchLabels: { app: 'web' } }, { matchLabels: { app: 'api' } }, { matchLabels: { app: 'db' } },
  { matchLabels: { app: 'cache' } }, { matchLabels: { app: 'worker' } }, { matchLabels: { tier: 'backend' } },
  { matchLabels: { tier: 'data' } }, { matchLabels: { app: 'api', version: 'v2' } },
  { matchExpressions: [{ key: 'version', operator: 'In', values: ['v2'] }] },
  { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['db', 'cache'] }] },
];
const PEER_PODS: LabelSelector[] = [
  { matchLabels: { app: 'web' } }, { matchLabels: { app: 'api' } }, { matchLabels: { tier: 'frontend' } },
  { matchLabels: { tier: 'backend' } }, { matchLabels: { app: 'worker' } },
];
const PEER_NS: LabelSelector[] = [
  { matchLabels: { team: 'infra' } }, { matchLabels: { team: 'payments' } }, { matchLabels: { env: 'prod' } },
  { matchExpressions: [{ key: 'env', operator: 'In', values: ['staging', 'dev'] }] },
];
const IP_BLOCKS: NetworkPolicyPeer[] = [
  { ipBlock: { cidr: '10.0.0.0/8', except: ['10.244.0.0/16'] } },
  { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24', '192.168.7.0/24'] } },
  { ipBlock: { cidr: '172.16.0.0/12' } },
  { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '169.254.169.254/32'] } },
];
const tcp = (port: number | string, endPort?: number): NetworkPolicyPort => (endPort ? { protocol: 'TCP', port, endPort } : { protocol: 'TCP', port });

type Spec = NetworkPolicy['spec'];

/** One policy of the mix; `kind` is its index in the weighted list below. */
function generated(r: () => number, ns: number): { name: string; spec: Spec } {
  const target = pick(r, TARGETS);
  const kinds: Array<() => { name: string; spec: Spec }> = [
    () => ({ name: 'allow-from-ns', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: pick(r, PEER_NS) }], ports: [tcp(pick(r, [8080, 9090]))] }] } }),
    () => ({ name: 'allow-pod-and-ns', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: pick(r, PEER_NS), podSelector: pick(r, PEER_PODS) }], ports: [tcp('http')] }] } }),
    () => ({ name: 'allow-same-ns', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: pick(r, PEER_PODS) }, { podSelector: pick(r, PEER_PODS) }], ports: [tcp(8080), tcp(9090)] }] } }),
    () => ({ name: 'allow-metrics', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'infra' } }, podSelector: { matchLabels: { app: 'worker' } } }], ports: [tcp('metrics')] }] } }),
    () => ({ name: 'allow-range', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: pick(r, PEER_PODS) }], ports: [tcp(8000, 8100), { protocol: 'UDP', port: 5000, endPort: 5099 }] }] } }),
    () => ({ name: 'allow-cidr', spec: { podSelector: target, policyTypes: ['Ingress'], ingress: [{ from: [pick(r, IP_BLOCKS), pick(r, IP_BLOCKS)], ports: [tcp(pick(r, [8080, 443]))] }] } }),
    () => ({ name: 'egress-db-dns', spec: { podSelector: target, policyTypes: ['Egress'], egress: [
      { to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [tcp('sql')] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ns-00' } } }], ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] },
    ] } }),
    () => ({ name: 'egress-external', spec: { podSelector: target, policyTypes: ['Egress'], egress: [{ to: [pick(r, IP_BLOCKS)], ports: [tcp(443), tcp(8443, 8453)] }] } }),
    () => ({ name: 'ingress-and-egress', spec: { podSelector: target, policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: pick(r, PEER_PODS) }, { namespaceSelector: pick(r, PEER_NS) }], ports: [tcp(pick(r, [8080, 9090]))] }],
      egress: [{ to: [{ namespaceSelector: pick(r, PEER_NS), podSelector: pick(r, PEER_PODS) }] }] } }),
  ];
  return pick(r, kinds)();
}

/** Default deny first in each namespace (a quarter of them for egress too), then the mix. */
function policy(i: number, seed: number): NetworkPolicy {
  const ns = i % NAMESPACES;
  const wrap = (name: string, spec: Spec): NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: nsName(ns), uid: `np-${i}` }, spec,
  });
  if (i < NAMESPACES) {
    return wrap('default-deny', ns % 4 === 0 ? { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } : { podSelector: {}, policyTypes: ['Ingress'] });
  }
  const g = generated(rng(seed * 1_000_003 + i), ns);
  return wrap(`${g.name}-${i}`, g.spec);
}

/**
 * The probe allowances, one policy per namespace (present whenever there are policies): any pod takes
 * TCP 8080 from the probe clients, and the clients may connect to TCP 8080 anywhere. Named to sort last.
 */
function probePolicy(ns: number): NetworkPolicy {
  const client = { matchLabels: { bench: 'client' } };
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: PROBE_POLICY, namespace: nsName(ns), uid: `probe-${ns}` },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: client }], ports: [tcp(PROBE_PORT)] }],
      egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } }], ports: [tcp(PROBE_PORT)] }] },
  };
}

/** N generated policies (plus the probe policies when N > 0) over the 200 pods. */
export function makeWorld(n: number, seed: number): PolicyWorld {
  const pods = Array.from({ length: ADDED_POD_INDEX }, (_, i) => makePod(i));
  const policies = Array.from({ length: n }, (_, i) => policy(i, seed));
  if (n > 0) for (let ns = 0; ns < NAMESPACES; ns++) policies.push(probePolicy(ns));
  return { namespaces: Array.from({ length: NAMESPACES }, (_, i) => namespace(i)), pods, policies, nodes: [NODE] };
}

/** The changes timed at every size: one more policy, one more pod, one pod's label changed. */
export const withPolicy = (w: PolicyWorld, seed: number): PolicyWorld => ({ ...w, policies: [...w.policies, policy(w.policies.length + 100_000, seed)] });
export const withPod = (w: PolicyWorld): PolicyWorld => ({ ...w, pods: [...w.pods, makePod(ADDED_POD_INDEX)] });
/** Pod 15 (an api pod in ns-01) becomes a worker: another tier, other policies select it. */
export const LABELLED_POD = 15;
export function withLabel(w: PolicyWorld): PolicyWorld {
  const old = w.pods[LABELLED_POD];
  const pod = { ...old, metadata: { ...old.metadata, labels: { ...old.metadata.labels, app: 'worker', tier: 'backend', version: 'v3' } } };
  return { ...w, pods: w.pods.map((p, i) => (i === LABELLED_POD ? pod : p)) };
}

/** The probe pairs: from each namespace's client to `perClient` seeded other pods, all on PROBE_PORT. */
export function probePairs(seed: number, perClient = 5): Array<{ from: number; to: number }> {
  const r = rng(seed ^ 0x5eed);
  const out: Array<{ from: number; to: number }> = [];
  for (let ns = 0; ns < NAMESPACES; ns++) {
    const from = ns * PODS_PER_NAMESPACE;
    for (let k = 0; k < perClient; k++) {
      let to = from;
      while (to === from) to = Math.floor(r() * ADDED_POD_INDEX);
      out.push({ from, to });
    }
  }
  // Interleave sources so consecutive connects leave from different pods.
  return out.map((p, i) => ({ p, k: (i % perClient) * NAMESPACES + Math.floor(i / perClient) })).sort((a, b) => a.k - b.k).map((x) => x.p);
}
