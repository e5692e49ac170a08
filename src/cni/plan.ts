// Pure planning for one pod attachment: names, MACs and the ip batch lines for the node side and
// the pod side. No kernel access here, so every decision is unit-tested without root.
import { CniCode, CniError } from './errors.js';
import type { FlatnetConf } from './config.js';
import type { Allocation } from '../ipam/types.js';
import type { Attachment, CniResult, CniRoute } from './types.js';

/** FNV-1a, 64 bits: names and MACs need spread, not secrecy, and node:crypto costs ~6 ms to load per plugin run. */
function fnv64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

const hashHex = (seed: string, chars: number): string => fnv64(seed).toString(16).padStart(16, '0').slice(0, chars);

/** Host-side veth name: stable per attachment, so DEL and GC find it without the pod's netns. */
export function hostVethName(a: Attachment): string {
  return 'fn' + hashHex(`${a.containerId}/${a.ifname}`, 12);
}

export const HOST_VETH_PATTERN = /^fn[0-9a-f]{12}$/;

const hex = (n: number) => n.toString(16).padStart(2, '0');

/** Kubernetes' convention for pod MACs: 0a:58 followed by the IPv4 address (locally administered). */
function macFromIPv4(ip: string): string {
  return ['0a', '58', ...ip.split('.').map((o) => hex(Number(o)))].join(':');
}

function macFromHash(seed: string, first: string): string {
  const h = hashHex(seed, 10);
  return [first, ...h.match(/../g)!].join(':');
}

export function containerMac(allocs: Allocation[], a: Attachment): string {
  const v4 = allocs.find((x) => x.version === 4);
  return v4 ? macFromIPv4(v4.ip) : macFromHash(`ctr/${a.containerId}/${a.ifname}`, '0a');
}

export function hostVethMac(a: Attachment): string {
  return macFromHash(`host/${a.containerId}/${a.ifname}`, '02');
}

/** A bridge takes the lowest MAC of its ports unless pinned; pinning keeps the gateway's MAC stable. */
export function bridgeMac(allocs: Allocation[], bridge: string): string {
  const v4 = allocs.find((x) => x.version === 4);
  return v4 ? macFromIPv4(v4.gateway) : macFromHash(`bridge/${bridge}`, '0a');
}

const prefixOf = (cidr: string) => cidr.slice(cidr.indexOf('/') + 1);
const familyOf = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4);

export interface AttachmentPlan {
  hostVeth: string;
  hostMac: string;
  containerMac: string;
  bridgeMac: string;
  /** Lines for `ip -force -batch` in the node's netns; line 1 may fail with "File exists". */
  nodeLines: string[];
  /** Lines for `ip -batch` in the pod's netns. */
  podLines: string[];
  routes: CniRoute[];
}

/** `mac`, when the runtime asked for one (CNI_ARGS MAC=, runtimeConfig.mac), is the pod interface's. */
export function planAttachment(conf: FlatnetConf, a: Attachment, netnsPath: string, allocs: Allocation[], mac?: string): AttachmentPlan {
  const hostVeth = hostVethName(a);
  const plan: AttachmentPlan = {
    hostVeth,
    hostMac: hostVethMac(a),
    containerMac: mac ?? containerMac(allocs, a),
    bridgeMac: bridgeMac(allocs, conf.bridge),
    nodeLines: [],
    podLines: [],
    routes: [],
  };
  const br = conf.bridge;
  const mtu = conf.mtu;
  // The peer is born inside the pod's netns: moving a link costs ~22 ms in the kernel.
  const vethLine = `link add ${hostVeth} address ${plan.hostMac} mtu ${mtu} type veth peer name ${a.ifname} address ${plan.containerMac} mtu ${mtu} netns ${netnsPath}`;
  if (conf.mode === 'routed') {
    // No bridge: the node routes each pod's /32 to its veth, and the pod reaches its gateway (an
    // address nobody holds) through a permanent neighbour entry naming the host veth's MAC.
    plan.nodeLines.push(vethLine, `link set ${hostVeth} up`);
    for (const al of allocs) {
      plan.nodeLines.push(`route replace ${al.ip}/32 dev ${hostVeth} scope link`);
      plan.nodeLines.push(`neigh replace ${al.ip} lladdr ${plan.containerMac} dev ${hostVeth} nud permanent`);
    }
    for (const al of allocs) {
      plan.podLines.push(`addr add ${al.ip}/32 dev ${a.ifname}`);
      plan.podLines.push(`neigh replace ${al.gateway} lladdr ${plan.hostMac} dev ${a.ifname} nud permanent`);
    }
    plan.podLines.push(`link set ${a.ifname} up`);
    for (const al of allocs) plan.podLines.push(`route add ${al.gateway} dev ${a.ifname} scope link`);
    addRoutes(conf, a, allocs, plan);
    return plan;
  }
  plan.nodeLines.push(`link add ${br} address ${plan.bridgeMac} mtu ${mtu} type bridge`);
  plan.nodeLines.push(`link set ${br} up`);
  for (const al of allocs) {
    plan.nodeLines.push(`addr replace ${al.gateway}/${prefixOf(al.address)} dev ${br}${al.version === 6 ? ' nodad' : ''}`);
  }
  plan.nodeLines.push(vethLine);
  plan.nodeLines.push(`link set ${hostVeth} master ${br}`);
  if (conf.hairpinMode) plan.nodeLines.push(`link set ${hostVeth} type bridge_slave hairpin on`);
  plan.nodeLines.push(`link set ${hostVeth} up`);

  for (const al of allocs) {
    plan.podLines.push(`addr add ${al.address} dev ${a.ifname}${al.version === 6 ? ' nodad' : ''}`);
  }
  plan.podLines.push(`link set ${a.ifname} up`);
  addRoutes(conf, a, allocs, plan);
  return plan;
}

/** The pod's routes from ipam.routes, each via its family's gateway unless it names one. */
function addRoutes(conf: FlatnetConf, a: Attachment, allocs: Allocation[], plan: AttachmentPlan): void {
  for (const r of conf.ipam.routes) {
    const fam = familyOf(r.dst);
    const gw = r.gw ?? allocs.find((x) => x.version === fam)?.gateway;
    if (!gw) {
      throw new CniError(CniCode.InvalidConfig,
        `ipam.routes: route to ${r.dst} needs an IPv${fam} gateway, but no IPv${fam} range is configured and the route names no "gw"`);
    }
    plan.podLines.push(`route add ${r.dst} via ${gw} dev ${a.ifname}`);
    plan.routes.push(r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst });
  }
}

/**
 * The ADD result: bridge, host veth and pod interface, then the addresses on the pod interface.
 * With a prevResult (flatnet chained after another plugin) ours are appended to it, as the spec asks.
 */
export function buildResult(conf: FlatnetConf, a: Attachment, netnsPath: string, plan: AttachmentPlan, allocs: Allocation[], bridgeMacSeen: string): CniResult {
  const prev = conf.prevResult;
  const interfaces = [
    ...(prev?.interfaces ?? []),
    ...(conf.mode === 'bridge' ? [{ name: conf.bridge, mac: bridgeMacSeen, mtu: conf.mtu }] : []),
    { name: plan.hostVeth, mac: plan.hostMac, mtu: conf.mtu },
    { name: a.ifname, mac: plan.containerMac, mtu: conf.mtu, sandbox: netnsPath },
  ];
  const podIndex = interfaces.length - 1;
  // Routed pods hold a /32 (as Calico's do): the result says what the pod has.
  const ips = [
    ...(prev?.ips ?? []),
    ...allocs.map((al) => ({ address: conf.mode === 'routed' ? `${al.ip}/32` : al.address, gateway: al.gateway, interface: podIndex })),
  ];
  return {
    cniVersion: conf.cniVersion,
    interfaces,
    ips,
    routes: [...(prev?.routes ?? []), ...plan.routes],
    dns: prev?.dns ?? {},
  };
}
