// The node's own interface on the node network: its address is the Node's InternalIP and the VXLAN
// local address, its MTU bounds the pod MTU. The same lookup serves a lab node (eth0 in its netns) and
// a real host (the interface of the default route).
import { ipJson } from '../kernel/ip.js';
import type { Netns } from '../kernel/netns.js';

export interface Underlay {
  ifname: string;
  /** The node IP with its prefix, e.g. 10.100.0.11/24. */
  cidr: string;
  nodeIP: string;
  mtu: number;
  /** The interface's global IPv6 address and its prefix, when it has one (a dual-stack node's second InternalIP). */
  nodeIPv6?: string;
  cidr6?: string;
}

interface AddrInfo { family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; deprecated?: boolean }
interface LinkAddrs { ifname: string; mtu: number; addr_info?: AddrInfo[] }

/** Picks the interface: the one named, else the one holding the IPv4 default route. */
export async function findUnderlay(ns: Netns, want: { ifname?: string; nodeIP?: string } = {}): Promise<Underlay> {
  let ifname = want.ifname;
  if (!ifname && !want.nodeIP) {
    const r = await ipJson(ns, ['-4', 'route', 'show', 'default']);
    ifname = (r.data[0] as { dev?: string } | undefined)?.dev;
    if (!ifname) throw new Error('no IPv4 default route in the node namespace: name the node interface with --iface');
  }
  const r = await ipJson(ns, ['-4', 'addr', 'show', ...(ifname ? ['dev', ifname] : [])]);
  if (!r.ok) throw new Error(`reading addresses${ifname ? ` of ${ifname}` : ''}: ${r.error}`);
  for (const link of r.data as LinkAddrs[]) {
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || a.scope !== 'global') continue;
      if (want.nodeIP && a.local !== want.nodeIP) continue;
      return { ifname: link.ifname, cidr: `${a.local}/${a.prefixlen}`, nodeIP: a.local, mtu: link.mtu, ...await ipv6Of(ns, link.ifname) };
    }
  }
  throw new Error(want.nodeIP
    ? `node IP ${want.nodeIP} is not an address of ${ifname ?? 'any interface'}`
    : `interface ${ifname} has no global IPv4 address`);
}

/** The first global, usable IPv6 address of the interface; {} when it has none. */
async function ipv6Of(ns: Netns, ifname: string): Promise<{ nodeIPv6?: string; cidr6?: string }> {
  const r = await ipJson(ns, ['-6', 'addr', 'show', 'dev', ifname, 'scope', 'global']);
  for (const link of (r.ok ? r.data : []) as LinkAddrs[]) {
    const a = (link.addr_info ?? []).find((x) => x.family === 'inet6' && !x.tentative && !x.deprecated);
    if (a) return { nodeIPv6: a.local, cidr6: `${a.local}/${a.prefixlen}` };
  }
  return {};
}
