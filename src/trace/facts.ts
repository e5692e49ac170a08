// What the kernel says about a traced packet on one node, read after it passed: the route its
// destination takes (with the VXLAN peer when the route encapsulates) and the conntrack entry it made.
import { Netns } from '../kernel/netns.js';
import { ipJson } from '../kernel/ip.js';
import { runCommand } from '../kernel/exec.js';
import { conntrackList, type ConntrackEntry } from '../kernel/conntrack.js';
import type { RouteFact } from './hops.js';
import type { TraceProtocol } from './arm.js';

export async function routeFact(netnsPath: string, dst: string): Promise<RouteFact | undefined> {
  const ns = new Netns(netnsPath);
  const r = await ipJson(ns, ['route', 'get', dst]);
  const route = r.ok ? r.data[0] as { dst: string; dev: string; gateway?: string } | undefined : undefined;
  if (!route) return undefined;
  const fact: RouteFact = { dst: route.dst, dev: route.dev, ...(route.gateway ? { gateway: route.gateway } : {}) };
  const link = await ipJson(ns, ['-d', 'link', 'show', 'dev', route.dev]);
  const info = link.ok ? link.data[0]?.linkinfo : undefined;
  if (info?.info_kind === 'vxlan') {
    fact.vxlan = { vni: info.info_data.id, ...(info.info_data.local ? { local: info.info_data.local } : {}) };
    const remote = route.gateway ? await vxlanRemote(ns, route.dev, route.gateway) : undefined;
    if (remote) fact.vxlan.remote = remote;
  }
  return fact;
}

/** The outer destination for a VXLAN gateway: its neighbour's MAC, then that MAC's forwarding entry. */
async function vxlanRemote(ns: Netns, dev: string, gateway: string): Promise<string | undefined> {
  const neigh = await ipJson(ns, ['neigh', 'show', 'to', gateway, 'dev', dev]);
  const mac: string | undefined = neigh.ok ? neigh.data[0]?.lladdr : undefined;
  if (!mac) return undefined;
  const w = ns.wrap('bridge', ['-j', 'fdb', 'show', 'dev', dev]);
  const r = await runCommand(w.cmd, w.args);
  if (r.code !== 0) return undefined;
  const entries = JSON.parse(r.stdout || '[]') as Array<{ mac: string; dst?: string }>;
  return entries.find((e) => e.mac === mac && e.dst)?.dst;
}

/** The entry the tagged packet made: its source address and the tag as source port or echo id. */
export async function conntrackFact(netnsPath: string, protocol: TraceProtocol, src: string, tag: number): Promise<ConntrackEntry | undefined> {
  const entries = await conntrackList(new Netns(netnsPath), { protocol });
  return entries.find((e) => e.orig.src === src && (protocol === 'icmp' ? e.orig.icmp?.id === tag : e.orig.sport === tag));
}
