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
}

interface AddrInfo { family: string; local: string; prefixlen: number; scope: string }
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
      return { ifname: link.ifname, cidr: `${a.local}/${a.prefixlen}`, nodeIP: a.local, mtu: link.mtu };
    }
  }
  throw new Error(want.nodeIP
    ? `node IP ${want.nodeIP} is not an address of ${ifname ?? 'any interface'}`
    : `interface ${ifname} has no global IPv4 address`);
}
