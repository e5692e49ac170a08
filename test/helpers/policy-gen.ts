// Policy worlds for tests: builders (namespaces, nodes, pods with labels and named container ports,
// policies as stored after defaulting) and a seeded generator of random worlds and connections.
import type { ContainerPort, LabelSelector, Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Node, Pod } from '../../src/api/types.js';
import type { Connection, PolicyWorld } from '../../src/policy/evaluate.js';

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
  phase?: 'Running' | 'Succeeded' | 'Failed';
}

/** A pod "ns/name" with its addresses (one, or several for dual stack). */
export function pod(ref: string, ips: string | string[], o: PodOptions = {}): Pod {
  const [namespace, name] = ref.split('/');
  const list = Array.isArray(ips) ? ips : [ips];
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, labels: o.labels ?? { pod: name }, ...(o.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { nodeName: o.node ?? 'n1', hostNetwork: o.hostNetwork, containers: [{ name: 'c', ports: o.ports ?? [] }] },
    status: list.length ? { phase: o.phase ?? 'Running', podIP: list[0], podIPs: list.map((ip) => ({ ip })) } : { phase: o.phase ?? 'Pending' },
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

// ---- The generator: random worlds and connections from a seed (no dependency), small vocabularies so
// selectors, names and ranges collide often enough to matter.

/** A seeded PRNG (mulberry32): the same seed gives the same world on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Gen {
  rand: () => number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
  some<T>(xs: readonly T[], max: number): T[];
}

export function gen(seed: number): Gen {
  const rand = prng(seed);
  const g: Gen = {
    rand,
    int: (n) => Math.floor(rand() * n),
    pick: (xs) => xs[Math.floor(rand() * xs.length)],
    chance: (p) => rand() < p,
    some: (xs, max) => Array.from({ length: g.int(max + 1) }, () => g.pick(xs)),
  };
  return g;
}

export interface WorldOptions {
  nodes?: number;
  namespaces?: number;
  podsPerNamespace?: number;
  policies?: number;
  /** Give pods an IPv6 address too (fd00:10:244:<node>::<n>). */
  dualStack?: boolean;
}

export const NS_LABELS = { team: ['a', 'b', 'c'], env: ['prod', 'dev'] } as const;
export const POD_LABELS = { app: ['web', 'db', 'cache'], tier: ['fe', 'be'] } as const;
export const PORT_NAMES = ['http', 'dns', 'metrics'] as const;
export const PORT_NUMBERS = [53, 80, 81, 443, 8080, 9090] as const;
/** An address outside the cluster, in the ipBlocks the generator writes. */
export const EXTERNAL = ['192.0.2.7', '198.51.100.9'] as const;

function labelsFrom(g: Gen, vocab: Record<string, readonly string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, vs] of Object.entries(vocab)) if (g.chance(0.7)) out[k] = g.pick(vs);
  return out;
}

function selector(g: Gen, vocab: Record<string, readonly string[]>): LabelSelector {
  const keys = Object.keys(vocab);
  switch (g.int(4)) {
    case 0: return {};
    case 1: { const k = g.pick(keys); return { matchLabels: { [k]: g.pick(vocab[k]) } }; }
    case 2: {
      const k = g.pick(keys);
      const operator = g.pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
      return { matchExpressions: [{ key: k, operator, ...(operator === 'In' || operator === 'NotIn' ? { values: g.some(vocab[k], 2) } : {}) }] };
    }
    default: { const k = g.pick(keys); return { matchLabels: { [k]: g.pick(vocab[k]) }, matchExpressions: [{ key: g.pick(keys), operator: 'Exists' }] }; }
  }
}

const CIDRS = ['10.244.0.0/16', '10.244.1.0/24', '10.244.2.0/24', '10.244.1.0/28', '10.100.0.0/24', '192.0.2.0/24', '0.0.0.0/0'];

function peer(g: Gen, namespaces: string[]): NetworkPolicyPeer {
  switch (g.int(5)) {
    case 0: return { podSelector: selector(g, { ...POD_LABELS, pod: ['p0', 'p1', 'p2'] }) };
    case 1: return { namespaceSelector: g.chance(0.3) ? { matchLabels: { 'kubernetes.io/metadata.name': g.pick(namespaces) } } : selector(g, NS_LABELS) };
    case 2: return { podSelector: selector(g, POD_LABELS), namespaceSelector: selector(g, NS_LABELS) };
    default: {
      const cidr = g.pick(CIDRS);
      const inside = CIDRS.filter((c) => c !== cidr && contains(cidr, c));
      return { ipBlock: { cidr, ...(inside.length && g.chance(0.5) ? { except: g.some(inside, 2) } : {}) } };
    }
  }
}

/** Whether CIDR a contains CIDR b (IPv4, for the generator's own list). */
function contains(a: string, b: string): boolean {
  const [an, ab] = a.split('/'); const [bn, bb] = b.split('/');
  const v = (ip: string) => ip.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  if (Number(bb) < Number(ab)) return false;
  const size = 2 ** (32 - Number(ab));
  return Math.floor(v(bn) / size) === Math.floor(v(an) / size);
}

function portSpec(g: Gen): NetworkPolicyPort {
  const protocol = g.chance(0.1) ? 'SCTP' : g.chance(0.3) ? 'UDP' : 'TCP';
  switch (g.int(4)) {
    case 0: return { protocol };
    case 1: return { protocol, port: g.pick(PORT_NAMES) };
    case 2: { const p = g.pick(PORT_NUMBERS); return { protocol, port: p, endPort: p + g.int(100) }; }
    default: return { protocol, port: g.pick(PORT_NUMBERS) };
  }
}

function rules(g: Gen, namespaces: string[]): Array<{ peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }> {
  return Array.from({ length: g.int(3) }, () => ({
    ...(g.chance(0.8) ? { peers: Array.from({ length: 1 + g.int(2) }, () => peer(g, namespaces)) } : {}),
    ...(g.chance(0.6) ? { ports: Array.from({ length: 1 + g.int(2) }, () => portSpec(g)) } : {}),
  }));
}

/** A random world: nodes n1.., namespaces ns0.., pods p0.. in each (some host-network, some terminating), policies. */
export function randomWorld(seed: number, o: WorldOptions = {}): PolicyWorld {
  const g = gen(seed);
  const nodes = Array.from({ length: o.nodes ?? 2 }, (_, i) => node(`n${i + 1}`, `10.100.0.${11 + i}`));
  const namespaces = Array.from({ length: o.namespaces ?? 3 }, (_, i) => ns(`ns${i}`, labelsFrom(g, NS_LABELS)));
  const nsNames = namespaces.map((n) => n.metadata.name);
  const pods: Pod[] = [];
  const next = new Map<number, number>(); // per node: pod addresses from .2 up (at most 253 pods a node)
  for (const space of nsNames) {
    for (let i = 0; i < (o.podsPerNamespace ?? 3); i++) {
      const k = 1 + g.int(nodes.length);
      const hostNetwork = g.chance(0.08);
      const n = next.get(k) ?? 2;
      if (!hostNetwork) next.set(k, n + 1);
      const ip = hostNetwork ? `10.100.0.${10 + k}` : `10.244.${k}.${n}`;
      const ports: ContainerPort[] = [];
      for (const name of PORT_NAMES) {
        if (g.chance(0.5)) ports.push({ name, containerPort: g.pick(PORT_NUMBERS), ...(g.chance(0.3) ? { protocol: 'UDP' as const } : {}) });
      }
      const ips = o.dualStack && !hostNetwork ? [ip, `fd00:10:244:${k}::${n}`] : ip;
      pods.push(pod(`${space}/p${i}`, ips, { node: `n${k}`, hostNetwork, terminating: g.chance(0.05), ports,
        labels: { ...labelsFrom(g, POD_LABELS), pod: `p${i}` } }));
    }
  }
  const policies = Array.from({ length: o.policies ?? 4 }, (_, i) => {
    const types = g.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']] as Array<Array<'Ingress' | 'Egress'>>);
    const ingress = types.includes('Ingress') ? rules(g, nsNames).map((r) => ({ from: r.peers, ports: r.ports })) : undefined;
    const egress = types.includes('Egress') ? rules(g, nsNames).map((r) => ({ to: r.peers, ports: r.ports })) : undefined;
    return policy(`${g.pick(nsNames)}/pol${i}`, { podSelector: selector(g, { ...POD_LABELS, pod: ['p0', 'p1', 'p2'] }), policyTypes: types, ingress, egress });
  });
  return { namespaces, pods, policies, nodes };
}

/** Every address a connection may come from or go to: pods', nodes', and outside ones. */
export function worldAddresses(w: PolicyWorld): string[] {
  const out = new Set<string>();
  for (const p of w.pods) for (const ip of p.status?.podIPs?.map((x) => x.ip) ?? []) out.add(ip);
  for (const nd of w.nodes) for (const a of nd.status?.addresses ?? []) out.add(a.address);
  for (const e of EXTERNAL) out.add(e);
  return [...out];
}

/** `count` random connections between the world's addresses (same family), ports from the vocabulary. */
export function randomConnections(w: PolicyWorld, seed: number, count: number): Connection[] {
  const g = gen(seed);
  const addrs = worldAddresses(w);
  const out: Connection[] = [];
  while (out.length < count) {
    const from = g.pick(addrs);
    const to = g.pick(addrs);
    if (from.includes(':') !== to.includes(':')) continue;
    const protocol = g.pick(['TCP', 'TCP', 'UDP', 'SCTP', 'ICMP'] as const);
    out.push({ from, to, protocol, port: protocol === 'ICMP' ? 0 : g.pick(PORT_NUMBERS) + (g.chance(0.2) ? g.int(60) : 0) });
  }
  return out;
}
