// Cross-node routing: how this node reaches every other node's pod CIDR.
//   host-gw: a route via the peer's node IP (the peer must be on this node's L2 segment);
//   vxlan:   a VTEP (flatnet.1, VNI 1, UDP 8472, as flannel's flannel.1), and per peer a permanent
//            neighbour entry (peer VTEP address → peer VTEP MAC), an FDB entry (MAC → peer node IP)
//            and a route `via <peer VTEP address> dev flatnet.1 onlink`;
//   auto:    host-gw to peers on this segment, vxlan to the rest.
// Dual stack routes each family on its own: an IPv6 pod CIDR goes host-gw via the peer's IPv6 node
// address (on this node's IPv6 segment), else through the same VTEP as IPv4 (VXLAN carries Ethernet
// frames, so one VTEP over the IPv4 underlay carries both; it gets an IPv6 address and IPv6 neighbours).
// renderRoutes computes the wanted state as data; planRouteChanges diffs it against what the kernel
// holds, so applying an already-right state writes nothing.
import ipaddr from 'ipaddr.js';
import { runCommand } from '../../kernel/exec.js';
import { ipBatch, ipJson } from '../../kernel/ip.js';
import type { Netns } from '../../kernel/netns.js';

/** Routes flatnet installs carry this protocol number: ours to replace or withdraw, nobody else's. */
export const ROUTE_PROTO = 77;
export const VTEP = 'flatnet.1';
/** VXLAN over IPv4 adds 50 bytes (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;

export type Backend = 'host-gw' | 'vxlan' | 'auto';

export interface PeerView { name: string; nodeIP: string; nodeIPv6?: string; podCIDRs: string[]; ready: boolean }

export interface RouteInputs {
  /** underlay.cidr6 / nodeIPv6: the node's IPv6 address on its segment, when it has one. */
  self: { name: string; nodeIP: string; nodeIPv6?: string; podCIDRs: string[]; ready: boolean; underlay: { ifname: string; cidr: string; cidr6?: string; mtu: number } };
  peers: PeerView[];
  backend: Backend;
  vxlan: { vni: number; port: number };
}

export interface VtepSpec { name: string; vni: number; port: number; local: string; dev: string; mac: string; mtu: number; addrs: string[] }
export interface RouteSpec { dst: string; via: string; dev: string; onlink: boolean; src?: string; peer: string }
export interface NeighSpec { ip: string; mac: string; dev: string }
export interface FdbSpec { mac: string; dst: string; dev: string }

export interface DesiredRoutes {
  vtep?: VtepSpec;
  routes: RouteSpec[];
  neighbors: NeighSpec[];
  fdb: FdbSpec[];
  /** Peers this node cannot route to with the chosen backend, and why. */
  unreachable: Array<{ peer: string; reason: string }>;
}

export function podMTU(underlayMtu: number, backend: Backend): number {
  return backend === 'host-gw' ? underlayMtu : underlayMtu - VXLAN_OVERHEAD;
}

/** A VTEP's MAC is derived from its node IP, so every node computes its peers' MACs without asking them. */
export function vtepMac(nodeIP: string): string {
  return ['0e', '66', ...nodeIP.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** A node's VTEP address in a family: the network address of its pod CIDR (flannel's choice: it is never a pod's). */
const vtepAddr = (cidr: string) => cidr.split('/')[0];
const isV6 = (cidr: string) => cidr.includes(':');

function onSegment(ip: string, segment: string): boolean {
  const [net, bits] = ipaddr.parseCIDR(segment);
  const addr = ipaddr.parse(ip);
  return addr.kind() === net.kind() && addr.match(net, bits);
}

/** Pure: the kernel state this node wants for the cluster it sees. */
export function renderRoutes(inp: RouteInputs): DesiredRoutes {
  const { self, backend } = inp;
  const dev = self.underlay.ifname;
  const out: DesiredRoutes = { routes: [], neighbors: [], fdb: [], unreachable: [] };
  const ownV4 = self.podCIDRs.find((c) => !c.includes(':'));
  if (backend !== 'host-gw' && ownV4) {
    out.vtep = {
      name: VTEP, vni: inp.vxlan.vni, port: inp.vxlan.port, local: self.nodeIP, dev, mac: vtepMac(self.nodeIP),
      mtu: podMTU(self.underlay.mtu, 'vxlan'), addrs: self.podCIDRs.map((c) => `${vtepAddr(c)}/${isV6(c) ? 128 : 32}`),
    };
  }
  for (const peer of [...inp.peers].sort((a, b) => a.name.localeCompare(b.name))) {
    if (peer.name === self.name || peer.podCIDRs.length === 0) continue;
    // A peer is routed while its Node object exists, heartbeat or not: a frozen or restarting agent
    // leaves its pods running, and only a deleted Node frees its CIDR (as Calico and flannel do).
    const adjacent = onSegment(peer.nodeIP, self.underlay.cidr);
    const direct = backend === 'host-gw' || (backend === 'auto' && adjacent);
    for (const cidr of peer.podCIDRs) {
      if (!isV6(cidr)) routePeerCIDR(inp, out, peer, cidr, direct ? { via: peer.nodeIP, adjacent } : undefined);
      else {
        // IPv6 is adjacent only when both nodes have an IPv6 address on one segment; auto tunnels the rest.
        const adjacent6 = !!peer.nodeIPv6 && !!self.underlay.cidr6 && onSegment(peer.nodeIPv6, self.underlay.cidr6);
        const direct6 = backend === 'host-gw' || (backend === 'auto' && adjacent6);
        routePeerCIDR(inp, out, peer, cidr, direct6 ? { via: peer.nodeIPv6, adjacent: adjacent6 } : undefined);
      }
    }
  }
  return out;
}

/** Adds what reaches one pod CIDR of a peer: a direct route via its node address, or the VXLAN entries. */
function routePeerCIDR(inp: RouteInputs, out: DesiredRoutes, peer: PeerView, cidr: string,
  direct: { via?: string; adjacent: boolean } | undefined): void {
  const { self } = inp;
  if (direct) {
    if (!direct.adjacent || !direct.via) {
      const what = isV6(cidr) ? `${peer.nodeIPv6 ?? 'an IPv6 node address (it has none)'} on this node's IPv6 segment ${self.underlay.cidr6 ?? '(this node has none)'}`
        : `${peer.nodeIP} on this node's segment ${self.underlay.cidr}`;
      out.unreachable.push({ peer: peer.name, reason: `host-gw needs ${what}; no route to ${cidr}` });
      return;
    }
    out.routes.push({ dst: cidr, via: direct.via, dev: self.underlay.ifname, onlink: false, peer: peer.name });
    return;
  }
  if (!out.vtep) {
    out.unreachable.push({ peer: peer.name, reason: `VXLAN needs an IPv4 pod CIDR on this node for its VTEP; no route to ${cidr}` });
    return;
  }
  const mac = vtepMac(peer.nodeIP);
  out.neighbors.push({ ip: vtepAddr(cidr), mac, dev: VTEP });
  // One FDB entry per peer, whatever families its frames carry.
  if (!out.fdb.some((f) => f.mac === mac)) out.fdb.push({ mac, dst: peer.nodeIP, dev: VTEP });
  // src: the node's own traffic to remote pods leaves with the node IP (rule 3), not the VTEP address.
  const src = isV6(cidr) ? self.nodeIPv6 : self.nodeIP;
  out.routes.push({ dst: cidr, via: vtepAddr(cidr), dev: VTEP, onlink: true, ...(src ? { src } : {}), peer: peer.name });
}

/** What the kernel holds of ours, read back in the same shape. */
export interface CurrentRoutes {
  vtep?: { vni: number; port: number; local?: string; dev?: string; mac: string; mtu: number; up: boolean; addrs: string[] };
  routes: Array<{ dst: string; via?: string; dev: string; onlink: boolean; src?: string }>;
  neighbors: Array<{ ip: string; mac?: string; permanent: boolean }>;
  fdb: Array<{ mac: string; dst?: string }>;
}

export interface RouteChanges { ip: string[]; bridge: string[] }

const routeLine = (r: RouteSpec) => `route replace ${r.dst} via ${r.via} dev ${r.dev}${r.onlink ? ' onlink' : ''}${r.src ? ` src ${r.src}` : ''} proto ${ROUTE_PROTO}`;

/** Pure: the `ip` and `bridge` batch lines that turn `cur` into `want`; both empty when nothing differs. */
export function planRouteChanges(want: DesiredRoutes, cur: CurrentRoutes): RouteChanges {
  const ip: string[] = [];
  const bridge: string[] = [];
  const wantDst = new Set(want.routes.map((r) => r.dst));
  for (const r of cur.routes) if (!wantDst.has(r.dst)) ip.push(`route del ${r.dst} proto ${ROUTE_PROTO}`);

  const v = want.vtep;
  let vtepFresh = false;
  if (!v) {
    if (cur.vtep) ip.push(`link del ${VTEP}`);
  } else {
    const c = cur.vtep;
    if (c && (c.vni !== v.vni || c.port !== v.port || c.local !== v.local || c.dev !== v.dev)) ip.push(`link del ${VTEP}`);
    if (!c || c.vni !== v.vni || c.port !== v.port || c.local !== v.local || c.dev !== v.dev) {
      vtepFresh = true;
      ip.push(`link add ${v.name} address ${v.mac} mtu ${v.mtu} type vxlan id ${v.vni} local ${v.local} dev ${v.dev} dstport ${v.port} nolearning`);
    } else {
      if (c.mac !== v.mac) ip.push(`link set ${v.name} address ${v.mac}`);
      if (c.mtu !== v.mtu) ip.push(`link set ${v.name} mtu ${v.mtu}`);
    }
    const have = new Set(vtepFresh ? [] : c!.addrs);
    // nodad: no neighbour answers DAD through the VTEP; an IPv6 address must not sit tentative.
    for (const a of v.addrs) if (!have.has(a)) ip.push(`addr replace ${a} dev ${v.name}${isV6(a) ? ' nodad' : ''}`);
    for (const a of vtepFresh ? [] : c!.addrs) if (!v.addrs.includes(a)) ip.push(`addr del ${a} dev ${v.name}`);
    if (vtepFresh || !c!.up) ip.push(`link set ${v.name} up`);
  }

  if (v) {
    const curNeigh = new Map((vtepFresh ? [] : cur.neighbors).map((n) => [n.ip, n]));
    for (const n of want.neighbors) {
      const c = curNeigh.get(n.ip);
      if (!c || c.mac !== n.mac || !c.permanent) ip.push(`neigh replace ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent`);
    }
    const wantNeigh = new Set(want.neighbors.map((n) => n.ip));
    for (const n of curNeigh.values()) if (!wantNeigh.has(n.ip)) ip.push(`neigh del ${n.ip} dev ${VTEP}`);
    const curFdb = vtepFresh ? [] : cur.fdb;
    for (const f of want.fdb) {
      if (!curFdb.some((c) => c.mac === f.mac && c.dst === f.dst)) bridge.push(`fdb replace ${f.mac} dev ${f.dev} dst ${f.dst} self permanent`);
    }
    for (const c of curFdb) {
      if (c.dst && !want.fdb.some((f) => f.mac === c.mac && f.dst === c.dst)) bridge.push(`fdb del ${c.mac} dev ${VTEP} dst ${c.dst} self`);
    }
  }

  const curRoute = new Map(cur.routes.map((r) => [r.dst, r]));
  for (const r of want.routes) {
    const c = curRoute.get(r.dst);
    // A new VTEP drops every route through the old one: re-add those.
    const same = c && !(vtepFresh && r.dev === VTEP) && c.via === r.via && c.dev === r.dev && c.onlink === r.onlink && (c.src ?? undefined) === r.src;
    if (!same) ip.push(routeLine(r));
  }
  return { ip, bridge };
}

interface LinkJson { ifname: string; mtu: number; address: string; flags: string[]; linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; link?: string } }; addr_info?: Array<{ family: string; local: string; prefixlen: number; scope: string }> }

/** Reads our VTEP, our routes, its neighbours and FDB entries. */
export async function readRoutes(ns: Netns): Promise<CurrentRoutes> {
  const cur: CurrentRoutes = { routes: [], neighbors: [], fdb: [] };
  const link = await ipJson(ns, ['-d', 'addr', 'show', 'dev', VTEP]);
  const l = link.ok ? (link.data[0] as LinkJson | undefined) : undefined;
  if (l) {
    const d = l.linkinfo?.info_data ?? {};
    cur.vtep = {
      vni: d.id ?? -1, port: d.port ?? -1, local: d.local, dev: d.link, mac: l.address, mtu: l.mtu, up: l.flags.includes('UP'),
      // The kernel's own link-local IPv6 address is not ours.
      addrs: (l.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
    };
    // Both families; entries the kernel made itself (not permanent) are its cache, never ours to delete.
    const neigh = await ipJson(ns, ['neigh', 'show', 'dev', VTEP]);
    cur.neighbors = (neigh.data as Array<{ dst: string; lladdr?: string; state?: string[] }>)
      .filter((n) => n.state?.includes('PERMANENT'))
      .map((n) => ({ ip: n.dst, mac: n.lladdr, permanent: true }));
    const { cmd, args } = ns.wrap('bridge', ['-j', 'fdb', 'show', 'dev', VTEP]);
    const fdb = await runCommand(cmd, args);
    if (fdb.code === 0 && fdb.stdout.trim()) {
      cur.fdb = (JSON.parse(fdb.stdout) as Array<{ mac: string; dst?: string }>).filter((f) => f.dst).map((f) => ({ mac: f.mac, dst: f.dst }));
    }
  }
  for (const family of ['-4', '-6']) {
    const routes = await ipJson(ns, [family, 'route', 'show', 'proto', String(ROUTE_PROTO)]);
    cur.routes.push(...(routes.data as Array<{ dst: string; gateway?: string; dev: string; prefsrc?: string; flags?: string[] }>)
      .map((r) => ({ dst: r.dst, via: r.gateway, dev: r.dev, onlink: !!r.flags?.includes('onlink'), src: r.prefsrc })));
  }
  return cur;
}

/** Brings the kernel to `want` in at most one ip batch and one bridge batch; writes nothing when it is right. */
export async function applyRoutes(ns: Netns, want: DesiredRoutes): Promise<{ writes: number; summary: string }> {
  const changes = planRouteChanges(want, await readRoutes(ns));
  // Deletions and the VTEP go first, FDB entries need the VTEP, routes via the VTEP come last.
  const routeLines = changes.ip.filter((l) => l.startsWith('route replace'));
  const first = changes.ip.filter((l) => !l.startsWith('route replace'));
  if (first.length) await ipBatch(ns, first);
  if (changes.bridge.length) {
    const { cmd, args } = ns.wrap('bridge', ['-batch', '-']);
    const r = await runCommand(cmd, args, changes.bridge.join('\n') + '\n');
    if (r.code !== 0) throw new Error(`bridge -batch: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  if (routeLines.length) await ipBatch(ns, routeLines);
  const all = [...changes.ip, ...changes.bridge];
  return { writes: all.length, summary: all.join('; ') };
}
