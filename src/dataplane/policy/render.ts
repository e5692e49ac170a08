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
import type { NftBlock, NftTable } from '../nft/model.js';
import { formatRange, ipBlockRanges, mergeRanges, type IpRange } from '../../policy/addresses.js';
import { mergePorts, nftPorts } from './intervals.js';
import { indexWorld, resolveNamedPort, peerPods, selectedLocal, type PolicyWorldIndex, type WorldPod } from './world.js';

export const POLICY_TABLE = 'flatnet-policy';

export interface PolicyRenderInput {
  nodeName: string;
  pods: Pod[];
  namespaces: Namespace[];
  policies: NetworkPolicy[];
  /** Local pods' addresses the warm CNI ADD knows before the store holds them ("ns/name" → IPs). */
  pending?: ReadonlyMap<string, string[]>;
  /** Render the IPv6 half too (a dual-stack cluster). */
  ipv6: boolean;
}

type Direction = 'ingress' | 'egress';
const FAMILIES = { 4: { ip: 'ip', addr: 'ipv4_addr', suffix: '' }, 6: { ip: 'ip6', addr: 'ipv6_addr', suffix: '6' } } as const;

/** 8 hex characters naming an object by its identity: chains and sets stay short inside our own table. */
export const shortHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 8);

/** nft refuses comments over 128 bytes; a policy's namespace and name may be longer. */
function comment(text: string): string {
  const clean = text.replace(/"/g, "'");
  return `comment "${Buffer.byteLength(clean) > 120 ? `${clean.slice(0, 110)}...` : clean}"`;
}

const policyKey = (p: NetworkPolicy) => `${namespaceOf(p)}/${p.metadata.name}`;

/** Table builder: blocks in declaration order, each set declared once however many rules share it. */
class TableBuilder {
  readonly sets: NftBlock[] = [];
  readonly chains: NftBlock[] = [];
  readonly elements = new Map<string, Map<string, string>>();
  private readonly chainNames = new Set<string>();

  has(name: string): boolean { return this.elements.has(name); }

  set(name: string, type: string, items: string[], verdictMap = false): string {
    if (!this.elements.has(name)) {
      this.sets.push({ kind: verdictMap ? 'map' : 'set', name, body: verdictMap ? [`type ${type} : verdict`] : [`type ${type}`, 'flags interval'] });
      this.elements.set(name, new Map());
    }
    const els = this.elements.get(name)!;
    for (const i of items) els.set(i, '');
    return name;
  }

  chain(name: string, rules: string[]): void {
    if (this.chainNames.has(name)) return;
    this.chainNames.add(name);
    this.chains.push({ kind: 'chain', name, body: rules });
  }
}

/** A rule's peers as address ranges: pods the selectors pick, plus each ipBlock minus its own excepts. */
function peerRanges(peers: NetworkPolicyPeer[], ns: string, w: PolicyWorldIndex): IpRange[] {
  const ranges: IpRange[] = peerPods(peers, ns, w).flatMap((p) => p.ranges);
  for (const peer of peers) ranges.push(...ipBlockRanges(peer));
  return mergeRanges(ranges);
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
function policyChain(t: TableBuilder, policy: NetworkPolicy, dir: Direction, selectedLocal: WorldPod[],
  w: PolicyWorldIndex, families: Array<4 | 6>): string {
  const key = policyKey(policy);
  const ns = namespaceOf(policy);
  const name = `${dir === 'ingress' ? 'pi' : 'pe'}-${shortHash(`${key}|${dir}`)}`;
  const rules: string[] = [];
  const specRules = (dir === 'ingress' ? policy.spec.ingress : policy.spec.egress) ?? [];
  specRules.forEach((rule, index) => {
    const peers = ('from' in rule ? rule.from : 'to' in rule ? rule.to : undefined) ?? [];
    const ports = rule.ports ?? [];
    const note = comment(`${key} ${dir} ${index}`);
    const peerField = dir === 'ingress' ? 'saddr' : 'daddr';
    // Per family: the peer match ("" when the rule has no peers), then one rule per kind of port match.
    const peerId = shortHash(`${ns}|${JSON.stringify(peers)}`);
    const numeric = numericPorts(ports);
    const portsSet = numeric.length ? t.set(`p-${shortHash(numeric.join(','))}`, 'inet_proto . inet_service', numeric) : undefined;
    const hasNamed = ports.some((p) => typeof p.port === 'string');
    // Ingress: the named port is the isolated pod's own; egress: the destination peer's.
    const destinations = dir === 'ingress' ? selectedLocal : peers.length ? peerPods(peers, ns, w) : w.pods;
    const familyList: Array<4 | 6 | undefined> = peers.length || hasNamed ? families : [undefined];
    for (const fam of familyList) {
      let match = '';
      if (peers.length && fam) {
        const f = FAMILIES[fam];
        const name = `a${f.suffix}-${peerId}`;
        // Identical peers share one set: its elements are computed once.
        const set = t.has(name) ? name : t.set(name, f.addr, peerRanges(peers, ns, w).filter((r) => r.family === fam).map(formatRange));
        match = `${f.ip} ${peerField} @${set} `;
      }
      if (ports.length === 0) { rules.push(`${match}accept ${note}`); continue; }
      if (portsSet) rules.push(`${match}meta l4proto . th dport @${portsSet} accept ${note}`);
      if (hasNamed && fam) {
        const f = FAMILIES[fam];
        const set = t.set(`n${f.suffix}-${shortHash(`${key}|${dir}|${index}`)}`, `${f.addr} . inet_proto . inet_service`, namedPorts(ports, destinations, fam));
        rules.push(`${match}${f.ip} daddr . meta l4proto . th dport @${set} accept ${note}`);
      }
    }
  });
  t.chain(name, rules);
  return name;
}

/** The base chains: established flows pass, then isolated pods go to their group's chain. */
function baseChains(families: Array<4 | 6>): NftBlock[] {
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

/** The whole table for one node. */
export function renderPolicy(input: PolicyRenderInput): NftTable {
  const families: Array<4 | 6> = input.ipv6 ? [4, 6] : [4];
  const w = indexWorld(input.nodeName, input.pods, input.namespaces, input.pending);
  const t = new TableBuilder();
  for (const fam of families) for (const dir of ['ingress', 'egress'] as const) t.set(`${dir}${FAMILIES[fam].suffix}`, FAMILIES[fam].addr, [], true);
  const policies = [...input.policies].sort((a, b) => policyKey(a).localeCompare(policyKey(b)));
  for (const dir of ['ingress', 'egress'] as const) {
    // Each local pod's isolating policies, and the chain of each.
    const isolating = new Map<WorldPod, Array<{ policy: NetworkPolicy; chain: string }>>();
    for (const policy of policies) {
      if (!policy.spec.policyTypes.includes(dir === 'ingress' ? 'Ingress' : 'Egress')) continue;
      const selected = selectedLocal(policy, w);
      if (selected.length === 0) continue;
      const chain = policyChain(t, policy, dir, selected, w, families);
      for (const pod of selected) {
        const list = isolating.get(pod);
        if (list) list.push({ policy, chain }); else isolating.set(pod, [{ policy, chain }]);
      }
    }
    for (const [pod, list] of isolating) {
      const names = list.map((l) => policyKey(l.policy));
      const group = `${dir === 'ingress' ? 'ig' : 'eg'}-${shortHash(`${dir}|${names.join(',')}`)}`;
      t.chain(group, [...list.map((l) => `jump ${l.chain}`), `drop ${comment(`${dir} isolated by ${names.join(', ')}`)}`]);
      for (const ip of pod.ips) {
        const fam = ip.includes(':') ? 6 : 4;
        if (!families.includes(fam)) continue;
        t.elements.get(`${dir}${FAMILIES[fam].suffix}`)!.set(ip, `goto ${group}`);
      }
    }
  }
  return { family: 'inet', name: POLICY_TABLE, blocks: [...t.sets, ...baseChains(families), ...t.chains], elements: t.elements };
}
