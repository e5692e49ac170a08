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
import { namespaceOf } from '../../policy/selector.js';
import type { NftBlock } from '../nft/model.js';
import { formatRange, ipBlockRanges, mergeRanges, type IpRange } from '../../policy/addresses.js';
import { mergePorts, nftPorts } from './intervals.js';
import { resolveNamedPort, peerPods, type PolicyWorldIndex, type WorldPod } from './world.js';

export const POLICY_TABLE = 'flatnet-policy';

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

/** A set or map the table declares, with the identity its name was made from. */
export interface SetPart { block: NftBlock; identity: string; elements: string[] }

/**
 * One policy's part of the table in one direction: its chain, the sets its rules look up, and the
 * local pods it isolates. Pure; the renderer (renderer.ts) keeps parts until what they read changes.
 */
export interface PolicyPart {
  policy: string; // "ns/name"
  chain: string;
  chainIdentity: string;
  body: string[];
  sets: SetPart[];
  /** Local pods ("ns/name") the policy isolates in this direction. */
  selected: string[];
}

const intervalSet = (name: string, type: string, identity: string, elements: string[]): SetPart =>
  ({ block: { kind: 'set', name, body: [`type ${type}`, 'flags interval'] }, identity, elements });

/** A rule's peers as address ranges: pods the selectors pick, plus each ipBlock minus its own excepts. */
function peerRanges(peers: NetworkPolicyPeer[], ns: string, w: PolicyWorldIndex): IpRange[] {
  const ranges: IpRange[] = peerPods(peers, ns, w).flatMap((p) => p.ranges);
  for (const peer of peers) ranges.push(...ipBlockRanges(peer));
  return mergeRanges(ranges);
}

/** A peer set's elements in one family, computed once per render for peers that many rules share. */
function peerElements(peers: NetworkPolicyPeer[], ns: string, identity: string, fam: 4 | 6, w: PolicyWorldIndex): string[] {
  const key = `${fam}|${identity}`;
  let out = w.elementsMemo.get(key);
  if (!out) {
    out = peerRanges(peers, ns, w).filter((r) => r.family === fam).map(formatRange);
    w.elementsMemo.set(key, out);
  }
  return out;
}

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
export function policyPart(policy: NetworkPolicy, dir: Direction, selectedLocal: WorldPod[],
  w: PolicyWorldIndex, families: Array<4 | 6>): PolicyPart {
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
    // Per family: the peer match ("" when the rule has no peers), then one rule per kind of port match.
    const peerIdentity = `${ns}|${JSON.stringify(peers)}`;
    const numeric = numericPorts(ports);
    const portsIdentity = numeric.join(',');
    const portsSet = numeric.length ? addSet(intervalSet(nameFor('p', portsIdentity), 'inet_proto . inet_service', portsIdentity, numeric)) : undefined;
    const hasNamed = ports.some((p) => typeof p.port === 'string');
    // Ingress: the named port is the isolated pod's own; egress: the destination peer's.
    const destinations = dir === 'ingress' ? selectedLocal : peers.length ? peerPods(peers, ns, w) : w.pods;
    const familyList: Array<4 | 6 | undefined> = peers.length || hasNamed ? families : [undefined];
    for (const fam of familyList) {
      let match = '';
      if (peers.length && fam) {
        const f = FAMILIES[fam];
        const set = addSet(intervalSet(nameFor(`a${f.suffix}`, peerIdentity), f.addr, peerIdentity, peerElements(peers, ns, peerIdentity, fam, w)));
        match = `${f.ip} ${peerField} @${set} `;
      }
      if (ports.length === 0) { rules.push(`${match}accept ${note}`); continue; }
      if (portsSet) rules.push(`${match}meta l4proto . th dport @${portsSet} accept ${note}`);
      if (hasNamed && fam) {
        const f = FAMILIES[fam];
        const identity = `${key}|${dir}|${index}`;
        const set = addSet(intervalSet(nameFor(`n${f.suffix}`, identity), `${f.addr} . inet_proto . inet_service`, identity, namedPorts(ports, destinations, fam)));
        rules.push(`${match}${f.ip} daddr . meta l4proto . th dport @${set} accept ${note}`);
      }
    }
  });
  return { policy: key, chain: nameFor(dir === 'ingress' ? 'pi' : 'pe', chainIdentity), chainIdentity, body: rules, sets: [...sets.values()], selected: selectedLocal.map((p) => p.key) };
}

/** The base chains: established flows pass, then isolated pods go to their group's chain. */
export function baseChains(families: Array<4 | 6>): NftBlock[] {
  const lookups = (field: 'saddr' | 'daddr', map: Direction) =>
    families.map((fam) => `${FAMILIES[fam].ip} ${field} vmap @${map}${FAMILIES[fam].suffix}`);
  // IPv6 neighbour discovery must keep working for isolated pods (ARP never reaches these hooks).
  const nd = families.includes(6) ? ['icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'] : [];
  const head = (hook: string, priority: string) => `type filter hook ${hook} priority ${priority}; policy accept;`;
  return [
    { kind: 'chain', name: 'forward-egress', body: [head('forward', 'filter'), 'ct state established,related accept',
      // A TCP segment of no known connection starts none (conntrack would pick it up mid-stream): else a
      // flow whose entry a policy change removed would come back as a "new" one from its server's side.
      `ct state new tcp flags != syn / fin,syn,rst,ack drop ${comment('not a SYN: no connection to pick up')}`,
      ...nd, ...lookups('saddr', 'egress')] },
    // A pod's packets to its own node (input) are egress too.
    { kind: 'chain', name: 'input-egress', body: [head('input', 'filter'), 'ct state established,related accept', ...nd, ...lookups('saddr', 'egress')] },
    // After egress (a later priority), so a packet between two local pods is judged both ways.
    { kind: 'chain', name: 'forward-ingress', body: [head('forward', 'filter + 10'), 'ct state established,related accept', ...nd, ...lookups('daddr', 'ingress')] },
  ];
}

