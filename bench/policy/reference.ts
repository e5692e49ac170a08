// The reference: NetworkPolicy as iptables + ipset in the per-pod-chain shape kube-router and Calico
// use, for the same policies. filter FORWARD jumps to RFWD, which accepts replies and then has, per
// isolated pod, `-s POD -j REG-<pod>` / `-d POD -j RIG-<pod>` (kube-router's linear pod dispatch).
// A pod chain jumps to each isolating policy's chain (RPE-/RPI-<policy>) until one marks the packet,
// then drops it unless marked; a policy chain is one MARK + RETURN pair per (peer, port) of each rule,
// peers matched with `-m set --match-set`. Sets are shared per distinct selector (as Calico does; the
// kernel here allows 256 sets per netns): pod peers hash:ip, ipBlocks hash:net with `nomatch` for
// their excepts, named ports one hash:ip,port set per port name (pod address, protocol, number).
import { createHash } from 'node:crypto';
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from '../../src/api/types.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from '../../src/policy/selector.js';
import type { PolicyWorld } from './world.js';

const EGRESS_OK = '0x10000/0x10000';
const INGRESS_OK = '0x20000/0x20000';
const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10);
const podAddress = (p: Pod) => p.status?.podIPs?.[0]?.ip ?? p.status?.podIP;
const idOf = (o: { metadata: { namespace?: string; name: string } }) => `${namespaceOf(o)}/${o.metadata.name}`;

export interface Reference {
  /** `ipset restore` input. */
  ipsets: string;
  /** `iptables-restore` input (the filter table only). */
  iptables: string;
  rules: number;
  chains: number;
  sets: number;
  elements: number;
  /** Mean number of policies isolating a pod (over all pods), per direction. */
  isolating: { ingress: number; egress: number };
}

/** The kernel's CONFIG_IP_SET_MAX here; a ruleset needing more sets cannot be loaded. */
export const IP_SET_MAX = 256;

/** The filter table of a node before any policy: FORWARD → RFWD, replies accepted. */
export const EMPTY_FILTER = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

/** Host bits cleared; prefix 0 becomes two /1 halves (hash:net takes prefixes 1–32). */
function nets(cidr: string): string[] {
  const [addr, len] = cidr.split('/');
  const bits = Number(len ?? 32);
  if (bits === 0) return ['0.0.0.0/1', '128.0.0.0/1'];
  const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  const m = (n & mask) >>> 0;
  return [`${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${bits}`];
}

class SetBook {
  readonly sets = new Map<string, { type: string; elements: string[] }>();
  private get(name: string, type: string, fill: () => string[]): string {
    if (!this.sets.has(name)) this.sets.set(name, { type, elements: fill() });
    return name;
  }
  /** A pod/namespace peer of a policy in `ns`: keyed by what it selects, not by the policy. */
  peer(peer: NetworkPolicyPeer, ns: string, world: PolicyWorld, namespaces: Map<string, Namespace>): string {
    const key = JSON.stringify([peer.namespaceSelector ? '*' : ns, peer.namespaceSelector ?? null, peer.podSelector ?? null]);
    return this.get(`R-P-${h(key)}`, 'hash:ip', () => world.pods.filter((p) => podAddress(p) && peerSelectsPod(peer, ns, p, namespaces)).map((p) => podAddress(p)!));
  }
  block(b: NonNullable<NetworkPolicyPeer['ipBlock']>): string {
    return this.get(`R-B-${h(JSON.stringify(b))}`, 'hash:net', () => [...nets(b.cidr), ...(b.except ?? []).flatMap(nets).map((e) => `${e} nomatch`)]);
  }
  /** Every pod's container port named `name`: `address,proto:number`. */
  named(name: string, world: PolicyWorld): string {
    return this.get(`R-N-${name}`.slice(0, 31), 'hash:ip,port', () => world.pods.flatMap((p) => {
      const ip = podAddress(p);
      if (!ip) return [];
      return p.spec.containers.flatMap((c) => c.ports ?? []).filter((cp) => cp.name === name)
        .map((cp) => `${ip},${(cp.protocol ?? 'TCP').toLowerCase()}:${cp.containerPort}`);
    }));
  }
}

/** Match fragments for a rule's ports ('' = every port); SCTP entries match nothing here. */
function portMatches(ports: NetworkPolicyPort[] | undefined, book: SetBook, world: PolicyWorld): string[] {
  if (!ports || ports.length === 0) return [''];
  const out: string[] = [];
  for (const p of ports) {
    if (p.protocol === 'SCTP') continue;
    const proto = p.protocol.toLowerCase();
    if (p.port === undefined) out.push(`-p ${proto}`);
    else if (typeof p.port === 'string') out.push(`-p ${proto} -m set --match-set ${book.named(p.port, world)} dst,dst`);
    else out.push(`-p ${proto} --dport ${p.endPort ? `${p.port}:${p.endPort}` : p.port}`);
  }
  return out;
}

/** One policy chain's rules for one direction. */
function policyRules(chain: string, pol: NetworkPolicy, dir: 'ingress' | 'egress', book: SetBook, world: PolicyWorld, namespaces: Map<string, Namespace>): string[] {
  const ns = namespaceOf(pol);
  const [side, mark] = dir === 'ingress' ? ['src', INGRESS_OK] : ['dst', EGRESS_OK];
  const rules = dir === 'ingress' ? (pol.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (pol.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
  const out: string[] = [];
  rules.forEach((rule, i) => {
    const peers = !rule.peers || rule.peers.length === 0 ? [''] : rule.peers.map((p) => `-m set --match-set ${p.ipBlock ? book.block(p.ipBlock) : book.peer(p, ns, world, namespaces)} ${side}`);
    for (const peer of peers) {
      for (const port of portMatches(rule.ports, book, world)) {
        const m = [peer, port].filter(Boolean).join(' ');
        out.push(`-A ${chain} ${m ? m + ' ' : ''}-m comment --comment "${idOf(pol)} ${dir} ${i}" -j MARK --set-xmark ${mark}`);
        out.push(`-A ${chain} -m mark --mark ${mark} -j RETURN`);
      }
    }
  });
  return out;
}

/** The whole reference ruleset for the node's pods (all pods here are the node's). */
export function renderReference(world: PolicyWorld): Reference {
  const namespaces = new Map(world.namespaces.map((n) => [n.metadata.name, n]));
  const book = new SetBook();
  const policies = [...world.policies].sort((a, b) => idOf(a).localeCompare(idOf(b)));
  const chains: string[] = ['RFWD'];
  const rules: string[] = ['-A FORWARD -j RFWD', '-A RFWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'];
  const policyChain = new Map<string, string>();
  const isolatingCount = { ingress: 0, egress: 0 };
  const chainOf = (pol: NetworkPolicy, dir: 'ingress' | 'egress') => {
    const key = `${dir}/${idOf(pol)}`;
    let c = policyChain.get(key);
    if (!c) {
      c = `${dir === 'ingress' ? 'RPI' : 'RPE'}-${h(key)}`;
      policyChain.set(key, c);
      chains.push(c);
      rules.push(...policyRules(c, pol, dir, book, world, namespaces));
    }
    return c;
  };
  for (const pod of world.pods) {
    const ip = podAddress(pod);
    if (!ip) continue;
    for (const dir of ['egress', 'ingress'] as const) {
      const type = dir === 'ingress' ? 'Ingress' : 'Egress';
      const isolating = policies.filter((p) => namespaceOf(p) === namespaceOf(pod) && p.spec.policyTypes.includes(type) && matchesSelector(p.spec.podSelector, pod.metadata.labels));
      isolatingCount[dir] += isolating.length;
      if (isolating.length === 0) continue;
      const mark = dir === 'ingress' ? INGRESS_OK : EGRESS_OK;
      const podChain = `${dir === 'ingress' ? 'RIG' : 'REG'}-${h(idOf(pod))}`;
      chains.push(podChain);
      rules.push(`-A RFWD ${dir === 'ingress' ? '-d' : '-s'} ${ip}/32 -m comment --comment "${idOf(pod)}" -j ${podChain}`);
      for (const p of isolating) rules.push(`-A ${podChain} -m mark ! --mark ${mark} -j ${chainOf(p, dir)}`);
      rules.push(`-A ${podChain} -m mark ! --mark ${mark} -m comment --comment "${dir} isolated by ${isolating.length} policies" -j DROP`);
    }
  }
  // Chains declared first, then their rules: iptables-restore needs a chain declared before a jump to it.
  const iptables = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
    ...chains.map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
  const ipsets: string[] = [];
  let elements = 0;
  for (const [name, s] of book.sets) {
    ipsets.push(`create ${name} ${s.type} family inet hashsize 1024 maxelem 65536`);
    for (const e of s.elements) ipsets.push(`add ${name} ${e}`);
    elements += s.elements.length;
  }
  const pods = Math.max(1, world.pods.length);
  return { ipsets: ipsets.join('\n') + '\n', iptables, rules: rules.length, chains: chains.length, sets: book.sets.size, elements,
    isolating: { ingress: isolatingCount.ingress / pods, egress: isolatingCount.egress / pods } };
}
