// The lab's cluster file: which nodes sit on which L2 segment of the node network, the backend and the
// cluster CIDR. `flatnet lab up -f cluster.yaml` reads it; without one the lab is defaultCluster().
// A dual-stack cluster names an IPv4 and an IPv6 CIDR ("10.244.0.0/16,fd00:10:244::/56", as
// kube-controller-manager's --cluster-cidr and kind's podSubnet take them); its hosts then get an IPv6
// address beside each IPv4 one (nodeIPv6).
import { parse } from 'yaml';
import ipaddr from 'ipaddr.js';

export type Backend = 'host-gw' | 'vxlan' | 'auto';

export interface LabCluster {
  apiVersion: 'flatnet.io/v1alpha1';
  kind: 'LabCluster';
  backend: Backend;
  /** One IPv4 CIDR, or an IPv4 and an IPv6 one joined by a comma (dual stack). */
  clusterCIDR: string;
  nodeCIDRMaskSize: number;
  /** L2 segments of the node network; a router joins them (and the external host). */
  segments: Array<{ name: string; subnet: string }>;
  /** `ip` is the node's address on its segment, fixed when the node joins (withNodeIPs). */
  nodes: Array<{ name: string; segment: string; ip?: string }>;
  /** The "internet": one host on its own segment behind the router. */
  external: { subnet: string };
  /** MTU of every node-network link. */
  mtu: number;
  /** ClusterIPs; LAB_SERVICE_CIDR when absent. */
  serviceCIDR?: string;
  /** Pods per node, as the kubelet's maxPods (110 when absent); never more than a node's pod CIDR holds. */
  maxPods?: number;
  /** What the agents read: the lab's etcd (default) or its Kubernetes API, as in a real cluster. */
  datastore?: 'etcd' | 'kubernetes';
}

/** The most pods per node a cluster file may ask for: the lab runs every pod as processes on one machine. */
export const MAX_PODS_LIMIT = 1000;

/** Each node's IPv6 slice: kube-controller-manager's default --node-cidr-mask-size-ipv6. */
export const NODE_CIDR_MASK_IPV6 = 64;

/** The node network's IPv6 twin: every lab host's IPv4 address a.b.c.d also has fdf0::a.b.c.d. */
export const NODE_NET6_PREFIX = 'fdf0::/96';

/** The cluster CIDRs, IPv4 first. */
export const clusterCIDRsOf = (c: Pick<LabCluster, 'clusterCIDR'>): string[] => c.clusterCIDR.split(',').map((s) => s.trim()).filter(Boolean);

export const isDualStack = (c: Pick<LabCluster, 'clusterCIDR'>): boolean => clusterCIDRsOf(c).some((x) => x.includes(':'));

/** A host's IPv6 address (or subnet) on the node network: its IPv4 one inside fdf0::/96, prefix + 96. */
export function nodeIPv6(v4: string): string {
  const [addr, prefix] = v4.split('/');
  const b = ipaddr.IPv4.parse(addr).toByteArray();
  const v6 = ipaddr.IPv6.parse(`fdf0::${(b[0] * 256 + b[1]).toString(16)}:${(b[2] * 256 + b[3]).toString(16)}`).toString();
  return prefix === undefined ? v6 : `${v6}/${Number(prefix) + 96}`;
}

/** kind's service CIDR: Kubernetes' 10.96.0.0/12 would hold the lab's node network, 10.100.0.0/16. */
export const LAB_SERVICE_CIDR = '10.96.0.0/16';

/** Three nodes on two segments (node-3 alone behind the router), the auto backend. */
export function defaultCluster(): LabCluster {
  return {
    apiVersion: 'flatnet.io/v1alpha1',
    kind: 'LabCluster',
    backend: 'auto',
    clusterCIDR: '10.244.0.0/16',
    nodeCIDRMaskSize: 24,
    segments: [{ name: 'a', subnet: '10.100.0.0/24' }, { name: 'b', subnet: '10.100.1.0/24' }],
    nodes: [{ name: 'node-1', segment: 'a' }, { name: 'node-2', segment: 'a' }, { name: 'node-3', segment: 'b' }],
    external: { subnet: '203.0.113.0/24' },
    mtu: 1500,
  };
}

export class ClusterFileError extends Error {}

// Node names are short DNS labels: they name namespaces, log and pid files, and kubectl-style columns.
const NAME = /^[a-z0-9]([a-z0-9-]{0,11}[a-z0-9])?$/;
const SEGMENT = /^[a-z0-9]{1,4}$/;

function ipv4Net(value: unknown, field: string, fail: (m: string) => never): [ipaddr.IPv4, number] {
  if (typeof value !== 'string') fail(`${field}: ${JSON.stringify(value)} is not a CIDR`);
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try { parsed = ipaddr.parseCIDR(value as string); } catch { return fail(`${field}: "${value}" is not a CIDR`); }
  if (parsed[0].kind() !== 'ipv4') fail(`${field}: "${value}" is not IPv4 (the lab's node network is IPv4)`);
  const net = ipaddr.IPv4.networkAddressFromCIDR(value as string);
  if (net.toString() !== parsed[0].toString()) fail(`${field}: "${value}" has host bits set (did you mean ${net}/${parsed[1]}?)`);
  return [parsed[0] as ipaddr.IPv4, parsed[1]];
}

/** The IPv6 half of a dual-stack cluster CIDR: a network of /64 slices, clear of the node network's twin. */
function ipv6ClusterNet(value: string, fail: (m: string) => never): void {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try { parsed = ipaddr.parseCIDR(value); } catch { return fail(`clusterCIDR: "${value}" is not a CIDR`); }
  if (parsed[0].kind() !== 'ipv6') fail(`clusterCIDR: "${value}" is not IPv6 (a dual-stack clusterCIDR is "IPv4-CIDR,IPv6-CIDR")`);
  const net = ipaddr.IPv6.networkAddressFromCIDR(value);
  if (net.toString() !== parsed[0].toString()) fail(`clusterCIDR: "${value}" has host bits set (did you mean ${net}/${parsed[1]}?)`);
  if (parsed[1] > NODE_CIDR_MASK_IPV6) fail(`clusterCIDR: "${value}" is smaller than one node's /${NODE_CIDR_MASK_IPV6}`);
  const twin = ipaddr.parseCIDR(NODE_NET6_PREFIX);
  if (parsed[0].match(twin) || twin[0].match(parsed as [ipaddr.IPv6, number])) fail(`clusterCIDR: "${value}" overlaps the node network's IPv6 addresses ${NODE_NET6_PREFIX}`);
}

const overlaps = (a: [ipaddr.IPv4, number], b: [ipaddr.IPv4, number]) => a[0].match(b) || b[0].match(a);

/** Checks a cluster description; throws naming the file, the field and the value. */
export function validateCluster(c: LabCluster, file: string): LabCluster {
  const fail = (m: string): never => { throw new ClusterFileError(`${file}: ${m}`); };
  if (!['host-gw', 'vxlan', 'auto'].includes(c.backend)) fail(`backend: "${c.backend}" is not one of host-gw, vxlan, auto`);
  if (c.datastore !== undefined && !['etcd', 'kubernetes'].includes(c.datastore)) fail(`datastore: "${c.datastore}" is not one of etcd, kubernetes`);
  if (typeof c.clusterCIDR !== 'string') fail(`clusterCIDR: ${JSON.stringify(c.clusterCIDR)} is not a CIDR`);
  const [first, v6, ...rest] = clusterCIDRsOf(c);
  if (rest.length) fail(`clusterCIDR: "${c.clusterCIDR}" names ${rest.length + 2} CIDRs; at most one IPv4 and one IPv6`);
  if (first?.includes(':')) fail(`clusterCIDR: "${c.clusterCIDR}" starts with IPv6; the lab's cluster needs IPv4 first (dual stack is "IPv4-CIDR,IPv6-CIDR"; IPv6-only is not supported)`);
  const cluster = ipv4Net(first, 'clusterCIDR', fail);
  if (v6 !== undefined) ipv6ClusterNet(v6, fail);
  if (!Number.isInteger(c.nodeCIDRMaskSize) || c.nodeCIDRMaskSize < cluster[1] || c.nodeCIDRMaskSize > 30) {
    fail(`nodeCIDRMaskSize: ${c.nodeCIDRMaskSize} must be an integer between ${cluster[1]} (the cluster CIDR's) and 30`);
  }
  if (!Number.isInteger(c.mtu) || c.mtu < 1280 || c.mtu > 9000) fail(`mtu: ${c.mtu} must be an integer between 1280 and 9000`);
  if (!Array.isArray(c.segments) || c.segments.length === 0) fail('segments: at least one segment is needed');
  const nets: Array<{ field: string; net: [ipaddr.IPv4, number] }> = [{ field: 'clusterCIDR', net: cluster }];
  if (c.serviceCIDR !== undefined) {
    const svc = ipv4Net(c.serviceCIDR, 'serviceCIDR', fail);
    if (svc[1] < 12 || svc[1] > 28) fail(`serviceCIDR: "${c.serviceCIDR}" must be between a /12 and a /28`);
    nets.push({ field: 'serviceCIDR', net: svc });
  } else {
    nets.push({ field: `serviceCIDR (default ${LAB_SERVICE_CIDR})`, net: ipv4Net(LAB_SERVICE_CIDR, 'serviceCIDR', fail) });
  }
  const segNames = new Set<string>();
  c.segments.forEach((s, i) => {
    if (typeof s?.name !== 'string' || !SEGMENT.test(s.name)) fail(`segments[${i}].name: ${JSON.stringify(s?.name)} must be 1-4 lowercase letters or digits`);
    if (segNames.has(s.name)) fail(`segments[${i}].name: "${s.name}" is used twice`);
    segNames.add(s.name);
    const net = ipv4Net(s.subnet, `segments[${i}].subnet`, fail);
    if (net[1] > 26) fail(`segments[${i}].subnet: "${s.subnet}" is too small (at most /26)`);
    nets.push({ field: `segments[${i}].subnet`, net });
  });
  nets.push({ field: 'external.subnet', net: ipv4Net(c.external?.subnet, 'external.subnet', fail) });
  for (let i = 0; i < nets.length; i++) {
    for (let j = i + 1; j < nets.length; j++) {
      if (overlaps(nets[i].net, nets[j].net)) fail(`${nets[j].field}: overlaps ${nets[i].field}`);
    }
  }
  if (!Array.isArray(c.nodes) || c.nodes.length === 0) fail('nodes: at least one node is needed');
  const nodeNames = new Set<string>();
  c.nodes.forEach((n, i) => {
    if (typeof n?.name !== 'string' || !NAME.test(n.name)) fail(`nodes[${i}].name: ${JSON.stringify(n?.name)} must be 1-13 lowercase letters, digits or "-"`);
    if (nodeNames.has(n.name)) fail(`nodes[${i}].name: "${n.name}" is used twice`);
    nodeNames.add(n.name);
    if (!segNames.has(n.segment)) fail(`nodes[${i}].segment: "${n.segment}" is not a segment (${[...segNames].join(', ')})`);
  });
  // The node IPAM hands each node one /nodeCIDRMaskSize slice of the cluster CIDR: a node past the last would never get one.
  const slices = 2 ** (c.nodeCIDRMaskSize - cluster[1]);
  if (c.nodes.length > slices) {
    fail(`nodes: ${c.nodes.length} nodes, but clusterCIDR "${first}" cut into /${c.nodeCIDRMaskSize}s (nodeCIDRMaskSize) holds only ${slices} node pod CIDRs`);
  }
  const slices6 = v6 === undefined ? Infinity : 2 ** Math.min(30, NODE_CIDR_MASK_IPV6 - Number(v6.split('/')[1]));
  if (c.nodes.length > slices6) {
    fail(`nodes: ${c.nodes.length} nodes, but clusterCIDR "${v6}" cut into /${NODE_CIDR_MASK_IPV6}s holds only ${slices6} node pod CIDRs`);
  }
  if (c.maxPods !== undefined && (!Number.isInteger(c.maxPods) || c.maxPods < 1 || c.maxPods > MAX_PODS_LIMIT)) {
    fail(`maxPods: ${JSON.stringify(c.maxPods)} must be an integer between 1 and ${MAX_PODS_LIMIT}`);
  }
  for (const s of c.segments) {
    const hosts = 2 ** (32 - Number(s.subnet.split('/')[1])) - 13;
    const count = c.nodes.filter((n) => n.segment === s.name).length;
    if (count > hosts) fail(`segments: "${s.name}" (${s.subnet}) holds ${count} nodes but has room for ${hosts}`);
  }
  return c;
}

/** Reads a cluster file (YAML or JSON); absent fields take defaultCluster()'s values. */
export function parseClusterFile(text: string, file: string): LabCluster {
  let doc: unknown;
  try { doc = parse(text); } catch (err) { throw new ClusterFileError(`${file}: not YAML: ${(err as Error).message}`); }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ClusterFileError(`${file}: expected a LabCluster object`);
  const d = doc as Record<string, unknown>;
  if (d.kind !== undefined && d.kind !== 'LabCluster') throw new ClusterFileError(`${file}: kind: "${String(d.kind)}" is not LabCluster`);
  const known = new Set(['apiVersion', 'kind', 'backend', 'clusterCIDR', 'serviceCIDR', 'nodeCIDRMaskSize', 'segments', 'nodes', 'external', 'mtu', 'maxPods', 'datastore']);
  for (const k of Object.keys(d)) if (!known.has(k)) throw new ClusterFileError(`${file}: ${k}: unknown field`);
  const base = defaultCluster();
  const merged = { ...base, ...d, apiVersion: base.apiVersion, kind: base.kind } as LabCluster;
  // A YAML list of CIDRs reads as kind's comma-separated form.
  if (Array.isArray(d.clusterCIDR)) merged.clusterCIDR = d.clusterCIDR.join(',');
  // Nodes given without segments default to the first segment.
  if (Array.isArray(d.nodes)) merged.nodes = (d.nodes as Array<Record<string, unknown>>).map((n) => ({ ...n, segment: n?.segment ?? merged.segments[0]?.name }) as LabCluster['nodes'][0]);
  return validateCluster(merged, file);
}

/** The router's address on a subnet (.1) and the n-th host address. */
export const hostAddress = (subnet: string, n: number): string => {
  const base = ipaddr.IPv4.networkAddressFromCIDR(subnet).toByteArray();
  const v = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) + n;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
};

/** Gives every node without an address the lowest free one from .11 of its segment; kept ones stay. Pure. */
export function withNodeIPs(c: LabCluster): LabCluster {
  const used = new Set(c.nodes.map((n) => n.ip).filter(Boolean));
  const nodes = c.nodes.map((n) => {
    if (n.ip) return n;
    const subnet = c.segments.find((s) => s.name === n.segment)!.subnet;
    for (let i = 11; ; i++) {
      const ip = hostAddress(subnet, i);
      if (!used.has(ip)) { used.add(ip); return { ...n, ip }; }
    }
  });
  return { ...c, nodes };
}
