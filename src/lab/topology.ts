// The lab's node network, built from namespaces: a fabric namespace holds one bridge per L2 segment; a
// router namespace joins the segments and the external host's segment (plain IP forwarding, no route
// to any pod CIDR, as a real underlay router has none); every node is a namespace with eth0 on its
// segment. Planned as data, then applied idempotently: an existing namespace or link is left as it is.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { ipBatch, ipJson } from '../kernel/ip.js';
import { Netns } from '../kernel/netns.js';
import { hostAddress, withNodeIPs, type LabCluster } from './cluster-file.js';

const run = promisify(execFile);

/** A veth pair: `a` in namespace `aNetns`, `b` in `bNetns`, `a` enslaved to `bridge` if given. */
interface Wire { aNetns: string; a: string; bNetns: string; b: string; bridge?: string; bAddr: string; bGateway?: string }

export interface TopologyPlan {
  fabric: string;
  router: string;
  nodes: Array<{ name: string; netns: string; segment: string; ip: string }>;
  external: { netns: string; ip: string };
  /** Every namespace of the node network. */
  namespaces: string[];
  bridges: string[];
  wires: Wire[];
  mtu: number;
}

/** Pure: the namespaces, bridges and links of a lab's node network. */
export function planTopology(lab: string, input: LabCluster): TopologyPlan {
  const cluster = withNodeIPs(input);
  const fabric = `${lab}-fabric`;
  const router = `${lab}-router`;
  const extNetns = `${lab}-ext`;
  const prefixOf = (subnet: string) => subnet.split('/')[1];
  const wires: Wire[] = [];
  for (const s of cluster.segments) {
    wires.push({ aNetns: fabric, a: `r-${s.name}`, bNetns: router, b: `seg-${s.name}`, bridge: `br-${s.name}`, bAddr: `${hostAddress(s.subnet, 1)}/${prefixOf(s.subnet)}` });
  }
  wires.push({ aNetns: fabric, a: 'r-ext', bNetns: router, b: 'seg-ext', bridge: 'br-ext', bAddr: `${hostAddress(cluster.external.subnet, 1)}/${prefixOf(cluster.external.subnet)}` });
  const external = { netns: extNetns, ip: hostAddress(cluster.external.subnet, 10) };
  wires.push({ aNetns: fabric, a: 'x-ext', bNetns: extNetns, b: 'eth0', bridge: 'br-ext', bAddr: `${external.ip}/${prefixOf(cluster.external.subnet)}`, bGateway: hostAddress(cluster.external.subnet, 1) });
  const nodes = cluster.nodes.map((n) => ({ name: n.name, netns: `${lab}-n-${n.name}`, segment: n.segment, ip: n.ip! }));
  for (const n of nodes) {
    const subnet = cluster.segments.find((s) => s.name === n.segment)!.subnet;
    wires.push({ aNetns: fabric, a: `n-${n.name}`, bNetns: n.netns, b: 'eth0', bridge: `br-${n.segment}`, bAddr: `${n.ip}/${prefixOf(subnet)}`, bGateway: hostAddress(subnet, 1) });
  }
  return {
    fabric, router, nodes, external,
    namespaces: [fabric, router, extNetns, ...nodes.map((n) => n.netns)],
    bridges: [...cluster.segments.map((s) => `br-${s.name}`), 'br-ext'],
    wires,
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
  for (const br of plan.bridges) {
    if (!fabricLinks.has(br)) fabricLines.push(`link add ${br} mtu ${plan.mtu} type bridge`);
    fabricLines.push(`link set ${br} up`);
  }
  await ipBatch(nsPath(plan.fabric), fabricLines);
  const present = new Map<string, Set<string>>();
  for (const w of plan.wires) {
    if (!present.has(w.bNetns)) present.set(w.bNetns, await linkNames(w.bNetns));
    const fabricSide = fabricLinks.has(w.a);
    const otherSide = present.get(w.bNetns)!.has(w.b);
    if (fabricSide && otherSide) continue;
    // A half-made pair (one end lost) is replaced whole.
    if (fabricSide) await ipBatch(nsPath(plan.fabric), [`link del ${w.a}`]);
    await ipBatch(nsPath(w.aNetns), [
      `link add ${w.a} mtu ${plan.mtu} type veth peer name ${w.b} netns ${w.bNetns}`,
      ...(w.bridge ? [`link set ${w.a} master ${w.bridge}`] : []),
      `link set ${w.a} up`,
    ]);
    const lines = [`link set ${w.b} mtu ${plan.mtu} up`, `addr replace ${w.bAddr} dev ${w.b}`];
    if (w.bGateway) lines.push(`route replace default via ${w.bGateway} dev ${w.b}`);
    await ipBatch(nsPath(w.bNetns), lines);
  }
  // The router forwards between segments; it learns no pod route, so only encapsulated or
  // masqueraded pod traffic crosses it, as on a real underlay.
  await run('nsenter', [`--net=/run/netns/${plan.router}`, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
}

/** Deletes every namespace of the plan (their links go with them). */
export async function destroyTopology(plan: TopologyPlan): Promise<void> {
  for (const ns of plan.namespaces) {
    if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
