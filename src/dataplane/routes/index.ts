// Cross-node routing: how this node reaches every other node's pod CIDR.
//   host-gw: a route via the peer's node IP (the peer must be on this node's L2 segment);
//   vxlan:   a VTEP (flatnet.1, VNI 1, UDP 8472, as flannel's flannel.1), and per peer a permanent
//            neighbour entry (peer VTEP address → peer VTEP MAC), an FDB entry (MAC → peer node IP)
//            and a route `via <peer VTEP address> dev flatnet.1 onlink`;
//   auto:    host-gw to peers on this segment, vxlan to the rest.
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

export interface PeerView { name: string; nodeIP: string; podCIDRs: string[]; ready: boolean }

export interface RouteInputs {
  self: { name: string; nodeIP: string; podCIDRs: string[]; ready: boolean; underlay: { ifname: string; cidr: string; mtu: number } };
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

/** A node's VTEP address: the network address of its IPv4 pod CIDR (flannel's choice: it is never a pod's). */
const vtepAddr = (cidr: string) => cidr.split('/')[0];

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
      mtu: podMTU(self.underlay.mtu, 'vxlan'), addrs: [`${vtepAddr(ownV4)}/32`],
    };
  }
  for (const peer of [...inp.peers].sort((a, b) => a.name.localeCompare(b.name))) {
    if (peer.name === self.name || peer.podCIDRs.length === 0) continue;
    // A peer is routed while its Node object exists, heartbeat or not: a frozen or restarting agent
    // leaves its pods running, and only a deleted Node frees its CIDR (as Calico and flannel do).
    const adjacent = onSegment(peer.nodeIP, self.underlay.cidr);
    const direct = backend === 'host-gw' || (backend === 'auto' && adjacent);
    for (const cidr of peer.podCIDRs.filter((c) => !c.includes(':'))) {
      if (direct) {
        if (!adjacent) {
          out.unreachable.push({ peer: peer.name, reason: `host-gw needs ${peer.nodeIP} on this node's segment ${self.underlay.cidr}; no route to ${cidr}` });
          continue;
        }
        out.routes.push({ dst: cidr, via: peer.nodeIP, dev, onlink: false, peer: peer.name });
      } else if (out.vtep) {
        const mac = vtepMac(peer.nodeIP);
        out.neighbors.push({ ip: vtepAddr(cidr), mac, dev: VTEP });
        out.fdb.push({ mac, dst: peer.nodeIP, dev: VTEP });
        // src: the node's own traffic to remote pods leaves with the node IP (rule 3), not the VTEP address.
        out.routes.push({ dst: cidr, via: vtepAddr(cidr), dev: VTEP, onlink: true, src: self.nodeIP, peer: peer.name });
      }
    }
  }
  return out;
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
    for (const a of v.addrs) if (!have.has(a)) ip.push(`addr replace ${a} dev ${v.name}`);
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

interface LinkJson { ifname: string; mtu: number; address: string; flags: string[]; linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; link?: string } }; addr_info?: Array<{ family: string; local: string; prefixlen: number }> }

/** Reads our VTEP, our routes, its neighbours and FDB entries. */
export async function readRoutes(ns: Netns): Promise<CurrentRoutes> {
  const cur: CurrentRoutes = { routes: [], neighbors: [], fdb: [] };
  const link = await ipJson(ns, ['-d', 'addr', 'show', 'dev', VTEP]);
  const l = link.ok ? (link.data[0] as LinkJson | undefined) : undefined;
  if (l) {
    const d = l.linkinfo?.info_data ?? {};
    cur.vtep = {
      vni: d.id ?? -1, port: d.port ?? -1, local: d.local, dev: d.link, mac: l.address, mtu: l.mtu, up: l.flags.includes('UP'),
      addrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    };
    const neigh = await ipJson(ns, ['neigh', 'show', 'dev', VTEP]);
    cur.neighbors = (neigh.data as Array<{ dst: string; lladdr?: string; state?: string[] }>)
      .map((n) => ({ ip: n.dst, mac: n.lladdr, permanent: !!n.state?.includes('PERMANENT') }));
    const { cmd, args } = ns.wrap('bridge', ['-j', 'fdb', 'show', 'dev', VTEP]);
    const fdb = await runCommand(cmd, args);
    if (fdb.code === 0 && fdb.stdout.trim()) {
      cur.fdb = (JSON.parse(fdb.stdout) as Array<{ mac: string; dst?: string }>).filter((f) => f.dst).map((f) => ({ mac: f.mac, dst: f.dst }));
    }
  }
  const routes = await ipJson(ns, ['-4', 'route', 'show', 'proto', String(ROUTE_PROTO)]);
  cur.routes = (routes.data as Array<{ dst: string; gateway?: string; dev: string; prefsrc?: string; flags?: string[] }>)
    .map((r) => ({ dst: r.dst, via: r.gateway, dev: r.dev, onlink: !!r.flags?.includes('onlink'), src: r.prefsrc }));
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
