// The node bridge and its gateway address, set up by the agent before any pod exists, so the node
// already routes its pod CIDR (rule 2) and the plugin's first ADD finds the bridge as it would make it.
import { readFileSync, writeFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { ipBatch, ipJson } from '../kernel/ip.js';
import type { Netns } from '../kernel/netns.js';

export interface GatewayAddr { address: string; prefix: number; version: 4 | 6 }

/** The gateway of a pod CIDR is its first address, as host-local and flatnet-cni's IPAM choose it. */
export function gatewayOf(cidr: string): GatewayAddr {
  const [net, bits] = ipaddr.parseCIDR(cidr);
  const bytes = net.toByteArray();
  for (let i = bytes.length - 1; i >= 0; i--) { if (bytes[i] < 255) { bytes[i]++; break; } bytes[i] = 0; }
  const addr = ipaddr.fromByteArray(bytes);
  return { address: addr.toString(), prefix: bits, version: addr.kind() === 'ipv4' ? 4 : 6 };
}

/** flatnet-cni pins the bridge MAC to 0a:58:<IPv4 gateway>; the agent makes the same bridge. */
export function bridgeMacFor(gw: GatewayAddr[]): string | undefined {
  const v4 = gw.find((g) => g.version === 4);
  return v4 && ['0a', '58', ...v4.address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

interface LinkJson { ifname: string; mtu: number; address: string; operstate: string; flags: string[]; addr_info?: Array<{ local: string; prefixlen: number }> }

/** The ip lines that bring the bridge to the wanted state; [] when it already is. Pure. */
export function bridgeLines(name: string, podCIDRs: string[], mtu: number, current: LinkJson | undefined): string[] {
  const gws = podCIDRs.map(gatewayOf);
  const mac = bridgeMacFor(gws);
  const lines: string[] = [];
  if (!current) lines.push(`link add ${name}${mac ? ` address ${mac}` : ''} mtu ${mtu} type bridge`);
  else if (current.mtu !== mtu) lines.push(`link set ${name} mtu ${mtu}`);
  const have = new Set((current?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  for (const g of gws) {
    if (!have.has(`${g.address}/${g.prefix}`)) lines.push(`addr replace ${g.address}/${g.prefix} dev ${name}${g.version === 6 ? ' nodad' : ''}`);
  }
  if (!current || !current.flags.includes('UP')) lines.push(`link set ${name} up`);
  return lines;
}

export async function ensureBridge(ns: Netns, name: string, podCIDRs: string[], mtu: number): Promise<string[]> {
  const r = await ipJson(ns, ['addr', 'show', 'dev', name]);
  const current = r.ok ? (r.data[0] as LinkJson | undefined) : undefined;
  const lines = bridgeLines(name, podCIDRs, mtu, current);
  if (lines.length) await ipBatch(ns, lines);
  return lines;
}

/** The node forwards between pods, the bridge and its other links. The agent runs inside the node's netns, so /proc/sys/net is that netns'. */
export function ensureForwarding(v6: boolean): string[] {
  const files = ['/proc/sys/net/ipv4/ip_forward', ...(v6 ? ['/proc/sys/net/ipv6/conf/all/forwarding'] : [])];
  const changed: string[] = [];
  for (const f of files) {
    if (readFileSync(f, 'utf8').trim() !== '1') { writeFileSync(f, '1'); changed.push(f); }
  }
  return changed;
}

/**
 * The node reaches its own pods from its node IP, not the bridge's gateway address: a host-network pod
 * is then seen by pods on its node exactly as by pods on other nodes (rule 3). Only the source hint of
 * the kernel's connected route changes.
 */
export async function ensureLocalRouteSource(ns: Netns, bridge: string, podCIDRs: string[], nodeIP: string, nodeIPv6?: string): Promise<string[]> {
  const lines: string[] = [];
  for (const cidr of podCIDRs) {
    const v6 = cidr.includes(':');
    const src = v6 ? nodeIPv6 : nodeIP;
    if (!src) continue;
    const r = await ipJson(ns, [v6 ? '-6' : '-4', 'route', 'show', 'exact', cidr, 'dev', bridge]);
    const route = r.data[0] as { prefsrc?: string } | undefined;
    // IPv6 keeps the kernel's prefix-route metric (256), so the replace finds the route it means.
    if (route?.prefsrc !== src) lines.push(`route replace ${cidr} dev ${bridge} proto kernel ${v6 ? 'metric 256' : 'scope link'} src ${src}`);
  }
  if (lines.length) await ipBatch(ns, lines);
  return lines;
}
