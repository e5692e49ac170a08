// NetworkPolicy into one nft table per node: `inet flatnet-policy`. Pure: objects in, the desired table
// (blocks and elements) out; the applier (../nft/applier.ts) diffs it against the kernel.
//
// Only this node's pods are isolated here: egress for packets they send (forward and input hooks),
// ingress for packets sent to them (forward). A local pod isolated in a direction is a key of the
// `egress`/`ingress` verdict map, whose value is the chain of its isolation group (the pods selected by
// the same set of policies); that chain jumps to each policy's chain, whose rules `accept` (ending this
// base chain) when a peer set and a port set match, and ends in a drop. See README.md for the hooks.
import { createHash } from 'node:crypto';
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from '../../api/types.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from '../../policy/selector.js';
import type { NftBlock } from '../nft/model.js';
import { formatRange, ipBlockRanges, mergeRanges, podAddresses, rangesContain } from '../../policy/addresses.js';
import { peerPods, selectedLocal, type PolicyWorldIndex, type WorldPod } from './world.js';
import { resolveNamedPort } from '../../policy/ports.js';

export const POLICY_TABLE = 'flatnet-policy';

/** The NFLOG group policy drops are logged to (one per node netns; the agent reads it, src/droplog/). */
export const DROP_LOG_GROUP = 13;
/** Every logged drop's prefix starts so; the rest names what dropped it (a group chain, or `not-syn`). */
export const DROP_LOG_PREFIX = 'flatnet-drop';
/** Logged drops per second per dropping chain, and the burst allowed above it: a flood logs no more. */
export const DROP_LOG_RATE = { perSecond: 10, burst: 20 };

/**
 * The rule that logs a drop before the drop itself: a separate rule, since a `limit` over its rate ends
 * the rule that holds it. The prefix (nft allows 127 bytes) names the chain, which the agent maps back.
 */
export function dropLogRule(what: string): string {
  return `limit rate ${DROP_LOG_RATE.perSecond}/second burst ${DROP_LOG_RATE.burst} packets log prefix "${DROP_LOG_PREFIX} ${what}" group ${DROP_LOG_GROUP}`;
}

export interface PolicyRenderInput {
  nodeName: string;
  pods: Pod[];
  namespaces: Namespace[];
  policies: NetworkPolicy[];
  /** Render the IPv6 half too (a dual-stack cluster). */
  ipv6: boolean;
}

export type Direction = 'ingress' | 'egress';
export const FAMILIES = { 4: { ip: 'ip', addr: 'ipv4_addr', suffix: '' }, 6: { ip: 'ip6', addr: 'ipv6_addr', suffix: '6' } } as const;

/** SHA-256 of an identity, remembered across renders: a steady cluster renders the same names again. */
const hashes = new Map<string, string>();
function sha256(text: string): string {
  let h = hashes.get(text);
  if (h === undefined) {
    if (hashes.size > 50_000) hashes.clear();
    h = createHash('sha256').update(text).digest('hex');
    hashes.set(text, h);
  }
  return h;
}

/** nft refuses comments over 128 bytes; a policy's namespace and name may be longer. */
export function comment(text: string): string {
  const clean = text.replace(/"/g, "'");
  return `comment "${Buffer.byteLength(clean) > 120 ? `${clean.slice(0, 110)}...` : clean}"`;
}

export const policyKey = (p: NetworkPolicy): string => `${namespaceOf(p)}/${p.metadata.name}`;

/** A short name for an object: its prefix and 12 hex characters of its identity's hash. */
export const nameFor = (prefix: string, identity: string): string => `${prefix}-${sha256(identity).slice(0, 12)}`;

/**
 * Where the elements of a set that changes with pods come from: the addresses of the pods a rule's
 * selectors pick, or a rule's named ports resolved on its destination pods (ingress: the pods the
 * policy isolates; egress: the peers).
 */
export type ElementSource =
  | { kind: 'pods'; fam: 4 | 6; ns: string; peers: NetworkPolicyPeer[] }
  | { kind: 'named'; fam: 4 | 6; ns: string; dir: Direction; policy: NetworkPolicy; peers: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] };

/** A set the table declares: its identity (what its name was made from), and its elements or their source. */
export interface SetPart { block: NftBlock; identity: string; elements?: string[]; source?: ElementSource }

/**
 * One policy's part of the table in one direction: its chain and the sets its rules look up. It
 * depends on the policy alone; the renderer (renderer.ts) fills the sets that change with pods.
 */
export interface PolicyPart {
  policy: string; // "ns/name"
  chain: string;
  chainIdentity: string;
  body: string[];
  sets: SetPart[];
}

const intervalSet = (name: string, type: string, identity: string, elements: string[]): SetPart =>
  ({ block: { kind: 'set', name, body: [`type ${type}`, 'flags interval'] }, identity, elements });
const hashSet = (name: string, type: string, identity: string, source: ElementSource): SetPart =>
  ({ block: { kind: 'set', name, body: [`type ${type}`] }, identity, source });

/** The elements of a set that changes with pods, as the world is now. */
export function sourceElements(src: ElementSource, w: PolicyWorldIndex): string[] {
  if (src.kind === 'pods') return podPeerElements(src.peers, src.ns, src.fam, w);
  const podPeers = src.peers.filter((p) => !p.ipBlock);
  // Ingress: the named port is the isolated pod's own; egress: the destination peer's.
  const destinations = src.dir === 'ingress' ? selectedLocal(src.policy, w) : namedPortDestinations(src.peers, podPeers, src.ns, w);
  return namedPorts(src.ports, destinations, src.fam);
}

/** Whether a pod (as it was or is) can change a source's elements. */
export function sourceTouchedBy(src: ElementSource, pod: WorldPod['pod'], namespaces: ReadonlyMap<string, Namespace>): boolean {
  const podPeers = src.peers.filter((p) => !p.ipBlock);
  const picked = podPeers.some((peer) => peerSelectsPod(peer, src.ns, pod, namespaces));
  if (src.kind === 'pods') return picked;
  if (src.dir === 'ingress') return namespaceOf(pod) === src.ns && matchesSelector(src.policy.spec.podSelector, pod.metadata.labels);
  if (src.peers.length === 0 || picked) return true;
  const blocks = src.peers.flatMap((p) => ipBlockRanges(p));
  return podAddresses(pod).some((ip) => rangesContain(blocks, ip));
}

/**
 * The addresses of the pods a rule's pod/namespace peers pick, in one family, once per render for peers
 * that many rules share. A hash set: nft 1.0.6 reads back every interval set of a table before any
 * change to it (a GETSETELEM per set), so the sets that change with pods are kept out of intervals.
 */
function podPeerElements(peers: NetworkPolicyPeer[], ns: string, fam: 4 | 6, w: PolicyWorldIndex): string[] {
  return [...new Set(peerPods(peers, ns, w).flatMap((p) => p.ips.filter((ip) => ip.includes(':') === (fam === 6))))].sort();
}

/**
 * The pods an egress rule's named ports may resolve on: those its selectors pick and those inside its
 * ipBlocks (a block may hold pod addresses), or every pod when the rule has no peers.
 */
function namedPortDestinations(peers: NetworkPolicyPeer[], podPeers: NetworkPolicyPeer[], ns: string, w: PolicyWorldIndex): WorldPod[] {
  if (peers.length === 0) return w.pods;
  const picked = new Set(podPeers.length ? peerPods(podPeers, ns, w) : []);
  const blocks = peers.flatMap((p) => ipBlockRanges(p));
  return w.pods.filter((p) => picked.has(p) || p.ips.some((ip) => rangesContain(blocks, ip)));
}

/** A rule's ipBlocks in one family: each cidr minus its own excepts, merged (nft refuses overlaps). */
function blockElements(peers: NetworkPolicyPeer[], fam: 4 | 6): string[] {
  return mergeRanges(peers.flatMap((p) => ipBlockRanges(p))).filter((r) => r.family === fam).map(formatRange);
}

/**
 * Port ranges of one protocol, merged: [[80, 80], [81, 90]] → [[80, 90]]. nft 1.0.6 refuses
 * overlapping elements in a concatenated interval set ("File exists") and keeps adjacent ones apart.
 */
function mergePorts(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** "80" or "80-90", as nft lists a port element. */
const nftPorts = ([a, b]: [number, number]): string => (a === b ? String(a) : `${a}-${b}`);

/** Numeric ports as "tcp . 80" / "udp . 81-90" elements; a protocol without a port is every port. */
function numericPorts(ports: NetworkPolicyPort[]): string[] {
  const byProto = new Map<string, Array<[number, number]>>();
  for (const p of ports) {
    if (typeof p.port === 'string') continue;
    const range: [number, number] = p.port === undefined ? [0, 65535] : [p.port, p.endPort ?? p.port];
    const proto = p.protocol.toLowerCase();
    byProto.set(proto, [...(byProto.get(proto) ?? []), range]);
  }
  return [...byProto].sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([proto, ranges]) => mergePorts(ranges).map((r) => `${proto} . ${nftPorts(r)}`));
}

/** Named ports resolved on each destination pod: "10.244.1.5 . tcp . 8080", one family. */
function namedPorts(ports: NetworkPolicyPort[], destinations: WorldPod[], family: 4 | 6): string[] {
  const out = new Set<string>();
  for (const p of ports) {
    if (typeof p.port !== 'string') continue;
    for (const d of destinations) {
      const number = resolveNamedPort(d.pod, p.port, p.protocol);
      if (number === undefined) continue;
      for (const ip of d.ips) if (ip.includes(':') === (family === 6)) out.add(`${ip} . ${p.protocol.toLowerCase()} . ${number}`);
    }
  }
  return [...out].sort();
}

/** One policy's rules in one direction, as a chain of accepts. */
export function policyPart(policy: NetworkPolicy, dir: Direction, families: Array<4 | 6>): PolicyPart {
  const key = policyKey(policy);
  const ns = namespaceOf(policy);
  const chainIdentity = `${key}|${dir}`;
  const sets = new Map<string, SetPart>();
  const addSet = (part: SetPart) => { if (!sets.has(part.block.name)) sets.set(part.block.name, part); return part.block.name; };
  const rules: string[] = [];
  const specRules = (dir === 'ingress' ? policy.spec.ingress : policy.spec.egress) ?? [];
  specRules.forEach((rule, index) => {
    const peers = ('from' in rule ? rule.from : 'to' in rule ? rule.to : undefined) ?? [];
    const ports = rule.ports ?? [];
    const note = comment(`${key} ${dir} ${index}`);
    const peerField = dir === 'ingress' ? 'saddr' : 'daddr';
    const podPeers = peers.filter((p) => !p.ipBlock);
    const blockPeers = peers.filter((p) => p.ipBlock);
    const podIdentity = `${ns}|${JSON.stringify(podPeers)}`;
    const numeric = numericPorts(ports);
    const portsIdentity = numeric.join(',');
    const portsSet = numeric.length ? addSet(intervalSet(nameFor('p', portsIdentity), 'inet_proto . inet_service', portsIdentity, numeric)) : undefined;
    const hasNamed = ports.some((p) => typeof p.port === 'string');
    const familyList: Array<4 | 6 | undefined> = peers.length || hasNamed ? families : [undefined];
    for (const fam of familyList) {
      // The peer matches, any of which will do: the selected pods' addresses, the ipBlocks ("" when
      // the rule has no peers); then one rule per kind of port match.
      const matches: string[] = peers.length ? [] : [''];
      if (fam && podPeers.length) {
        const f = FAMILIES[fam];
        const set = addSet(hashSet(nameFor(`a${f.suffix}`, podIdentity), f.addr, podIdentity, { kind: 'pods', fam, ns, peers: podPeers }));
        matches.push(`${f.ip} ${peerField} @${set} `);
      }
      const blocks = fam && blockPeers.length ? blockElements(blockPeers, fam) : [];
      if (fam && blocks.length) {
        const f = FAMILIES[fam];
        const set = addSet(intervalSet(nameFor(`b${f.suffix}`, blocks.join(',')), f.addr, blocks.join(','), blocks));
        matches.push(`${f.ip} ${peerField} @${set} `);
      }
      for (const match of matches) {
        if (ports.length === 0) { rules.push(`${match}accept ${note}`); continue; }
        if (portsSet) rules.push(`${match}meta l4proto . th dport @${portsSet} accept ${note}`);
        if (hasNamed && fam) {
          const f = FAMILIES[fam];
          const identity = `${key}|${dir}|${index}`;
          const set = addSet(hashSet(nameFor(`n${f.suffix}`, identity), `${f.addr} . inet_proto . inet_service`, identity, { kind: 'named', fam, ns, dir, policy, peers, ports }));
          rules.push(`${match}${f.ip} daddr . meta l4proto . th dport @${set} accept ${note}`);
        }
      }
    }
  });
  return { policy: key, chain: nameFor(dir === 'ingress' ? 'pi' : 'pe', chainIdentity), chainIdentity, body: rules, sets: [...sets.values()] };
}

/** The base chains: established flows pass, then isolated pods go to their group's chain. */
export function baseChains(families: Array<4 | 6>): NftBlock[] {
  const lookups = (field: 'saddr' | 'daddr', map: Direction) =>
    families.map((fam) => `${FAMILIES[fam].ip} ${field} vmap @${map}${FAMILIES[fam].suffix}`);
  // A pod reaching itself through a Service (DNAT back to its own address) is a pod reaching itself,
  // which no policy restricts: the packet leaves and re-enters it, so it crosses forward here.
  const self = families.map((fam) => `${FAMILIES[fam].ip} saddr . ${FAMILIES[fam].ip} daddr @self${FAMILIES[fam].suffix} accept`);
  // IPv6 neighbour discovery must keep working for isolated pods (ARP never reaches these hooks).
  const nd = families.includes(6) ? ['icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'] : [];
  const head = (hook: string, priority: string) => `type filter hook ${hook} priority ${priority}; policy accept;`;
  return [
    { kind: 'chain', name: 'forward-egress', body: [head('forward', 'filter'), 'ct state established,related accept',
      // A TCP segment of no known connection starts none (conntrack would pick it up mid-stream): else a
      // flow whose entry a policy change removed would come back as a "new" one from its server's side.
      `ct state new tcp flags != syn / fin,syn,rst,ack ${dropLogRule('not-syn')}`,
      `ct state new tcp flags != syn / fin,syn,rst,ack drop ${comment('not a SYN: no connection to pick up')}`,
      ...nd, ...self, ...lookups('saddr', 'egress')] },
    // A pod's packets to its own node (input) are egress too.
    { kind: 'chain', name: 'input-egress', body: [head('input', 'filter'), 'ct state established,related accept', ...nd, ...lookups('saddr', 'egress')] },
    // After egress (a later priority), so a packet between two local pods is judged both ways.
    { kind: 'chain', name: 'forward-ingress', body: [head('forward', 'filter + 10'), 'ct state established,related accept', ...nd, ...self, ...lookups('daddr', 'ingress')] },
  ];
}

