// The lab's node network, built from namespaces: a fabric namespace holds one switch per L2 segment; a
// router namespace joins the segments and the external host's segment (plain IP forwarding, no route
// to any pod CIDR, as a real underlay router has none); every node is a namespace with eth0 on its
// segment. Planned as data, then applied idempotently: an existing namespace or link is left as it is.
// A dual-stack cluster's hosts also get IPv6 (fdf0::<IPv4>, nodeIPv6) and the router forwards it, as
// the hosts of a dual-stack Kubernetes cluster have an InternalIP of each family.
//
// A switch is a veth end in the fabric namespace; each host's port is a macvlan in bridge mode on it,
// moved into the host's namespace. Siblings of one macvlan hand frames to each other directly, so the
// switch costs the hosts no more than a wire between them, as a physical switch would (a Linux bridge
// between veth pairs adds a second hop and about 10% of a TCP stream's throughput on this machine).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { ipBatch, ipJson } from '../kernel/ip.js';
import { Netns } from '../kernel/netns.js';
import { hostAddress, isDualStack, nodeIPv6, withNodeIPs, type LabCluster } from './cluster-file.js';

const run = promisify(execFile);

/** A host's port on a segment: macvlan `dev` in namespace `netns`, on the fabric's switch `sw`. */
interface Port { netns: string; dev: string; sw: string; addr: string; gateway?: string; addr6?: string; gateway6?: string }

export interface TopologyPlan {
  fabric: string;
  router: string;
  nodes: Array<{ name: string; netns: string; segment: string; ip: string; ip6?: string }>;
  external: { netns: string; ip: string; ip6?: string };
  /** Every namespace of the node network. */
  namespaces: string[];
  /** One per segment and one for the external host's segment, in the fabric namespace. */
  switches: string[];
  ports: Port[];
  mtu: number;
}

/** The fabric-side link standing for segment `segment`'s switch (segment names are 1-4 characters). */
export const switchName = (segment: string) => `sw-${segment}`;

/** Pure: the namespaces, switches and ports of a lab's node network. */
export function planTopology(lab: string, input: LabCluster): TopologyPlan {
  const cluster = withNodeIPs(input);
  const fabric = `${lab}-fabric`;
  const router = `${lab}-router`;
  const extNetns = `${lab}-ext`;
  const prefixOf = (subnet: string) => subnet.split('/')[1];
  const ports: Port[] = [];
  for (const s of cluster.segments) {
    ports.push({ netns: router, dev: `seg-${s.name}`, sw: switchName(s.name), addr: `${hostAddress(s.subnet, 1)}/${prefixOf(s.subnet)}` });
  }
  ports.push({ netns: router, dev: 'seg-ext', sw: switchName('ext'), addr: `${hostAddress(cluster.external.subnet, 1)}/${prefixOf(cluster.external.subnet)}` });
  const external: TopologyPlan['external'] = { netns: extNetns, ip: hostAddress(cluster.external.subnet, 10) };
  ports.push({ netns: extNetns, dev: 'eth0', sw: switchName('ext'), addr: `${external.ip}/${prefixOf(cluster.external.subnet)}`, gateway: hostAddress(cluster.external.subnet, 1) });
  const nodes: TopologyPlan['nodes'] = cluster.nodes.map((n) => ({ name: n.name, netns: `${lab}-n-${n.name}`, segment: n.segment, ip: n.ip! }));
  for (const n of nodes) {
    const subnet = cluster.segments.find((s) => s.name === n.segment)!.subnet;
    ports.push({ netns: n.netns, dev: 'eth0', sw: switchName(n.segment), addr: `${n.ip}/${prefixOf(subnet)}`, gateway: hostAddress(subnet, 1) });
  }
  if (isDualStack(cluster)) {
    // Every port gets its address's IPv6 twin, and the same gateway's twin.
    for (const p of ports) {
      p.addr6 = nodeIPv6(p.addr);
      if (p.gateway) p.gateway6 = nodeIPv6(p.gateway);
    }
    for (const n of nodes) n.ip6 = nodeIPv6(n.ip);
    external.ip6 = nodeIPv6(external.ip);
  }
  return {
    fabric, router, nodes, external,
    namespaces: [fabric, router, extNetns, ...nodes.map((n) => n.netns)],
    switches: [...cluster.segments.map((s) => switchName(s.name)), switchName('ext')],
    ports,
    mtu: cluster.mtu,
  };
}

const nsPath = (name: string) => new Netns(`/run/netns/${name}`);

async function ensureNetns(name: string): Promise<void> {
  if (!existsSync(`/run/netns/${name}`)) await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

async function linkNames(netns: string): Promise<Set<string>> {
  const r = await ipJson(nsPath(netns), ['link', 'show']);
  return new Set((r.data as Array<{ ifname: string }>).map((l) => l.ifname));
}

/** Creates whatever of the plan is missing; what exists is left untouched. */
export async function applyTopology(plan: TopologyPlan): Promise<void> {
  for (const ns of plan.namespaces) await ensureNetns(ns);
  const fabricLinks = await linkNames(plan.fabric);
  const fabricLines: string[] = [];
  for (const sw of plan.switches) {
    // The veth's other end only gives the switch a carrier, which its macvlans inherit.
    if (!fabricLinks.has(sw)) fabricLines.push(`link add ${sw} mtu ${plan.mtu} type veth peer name ${sw}-p mtu ${plan.mtu}`);
    fabricLines.push(`link set ${sw} up`, `link set ${sw}-p up`);
  }
  await ipBatch(nsPath(plan.fabric), fabricLines);
  const present = new Map<string, Set<string>>();
  for (const p of plan.ports) {
    if (!present.has(p.netns)) present.set(p.netns, await linkNames(p.netns));
    if (present.get(p.netns)!.has(p.dev)) continue;
    // Created from the fabric, where the switch is, straight into the host's namespace under its name.
    await ipBatch(nsPath(plan.fabric), [`link add ${p.dev} link ${p.sw} netns ${p.netns} mtu ${plan.mtu} type macvlan mode bridge`]);
    const lines = [`link set ${p.dev} up`, `addr replace ${p.addr} dev ${p.dev}`];
    if (p.gateway) lines.push(`route replace default via ${p.gateway} dev ${p.dev}`);
    // nodad: a fresh address is usable at once, not tentative for the second DAD takes.
    if (p.addr6) lines.push(`addr replace ${p.addr6} dev ${p.dev} nodad`);
    if (p.gateway6) lines.push(`route replace ::/0 via ${p.gateway6} dev ${p.dev}`);
    await ipBatch(nsPath(p.netns), lines);
  }
  // The router forwards between segments; it learns no pod route, so only encapsulated or
  // masqueraded pod traffic crosses it, as on a real underlay.
  const forward = plan.ports.some((p) => p.addr6) ? ' /proc/sys/net/ipv6/conf/all/forwarding' : '';
  await run('nsenter', [`--net=/run/netns/${plan.router}`, 'sh', '-c', `for f in /proc/sys/net/ipv4/ip_forward${forward}; do echo 1 > $f; done`]);
}

/** Deletes every namespace of the plan (their links go with them). */
export async function destroyTopology(plan: TopologyPlan): Promise<void> {
  for (const ns of plan.namespaces) {
    if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
