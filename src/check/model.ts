// What `flatnet check` knows of the cluster and what it proves: the rules of the Kubernetes network
// model, each turned into probes (real connections) or facts, then judged. Everything here is pure.
import ipaddr from 'ipaddr.js';
import type { CheckService } from './services.js';
import type { PolicyWorld } from '../policy/evaluate.js';

export interface CheckNode { name: string; nodeIP: string; nodeIPv6?: string; podCIDRs: string[]; netns: string }
export interface CheckPod {
  namespace: string;
  name: string;
  node: string;
  ips: string[];
  hostNetwork: boolean;
  /** Where the pod's processes run: its own netns, or its node's for hostNetwork pods. */
  netns: string;
  containers: Array<{ name: string; ports: Array<{ port: number; protocol: 'tcp' | 'udp' }> }>;
  /** False when the pod is not Ready (its servers not listening): its own ports are not probed. */
  ready?: boolean;
}
/** A pod the check waited for in vain, and why (its Ready condition's message, or its phase). */
export interface UnreadyPod { pod: string; node?: string; reason: string }
export interface CheckInputs {
  clusterCIDRs: string[];
  nodes: CheckNode[];
  pods: CheckPod[];
  /** A host outside the cluster (the lab's "internet"); ip6 when it has IPv6 too. */
  external?: { netns: string; ip: string; ip6?: string };
  /** Services with their ready endpoints (rules 7-10; services.ts). */
  services?: CheckService[];
  /** Pods still not Ready when the check stopped waiting (ready.ts). */
  unready?: UnreadyPod[];
  /** The objects NetworkPolicy is judged on (rule 11; policy.ts); absent or no policies: every pair is allowed. */
  policy?: PolicyWorld;
}

/** Rules 1-6: the pod network; 7-10: the service network (services.ts); 11: NetworkPolicy (policy.ts). */
export type RuleId = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11;
type PodRuleId = 1 | 2 | 3 | 4 | 5 | 6;
export const RULE_TITLES: Record<PodRuleId, string> = {
  1: 'every pod reaches every other pod by its IP, without NAT',
  2: 'every node reaches every pod',
  3: 'host-network pods reach every pod, seen as their node IP',
  4: 'containers of one pod reach each other on localhost',
  5: 'pod IPs unique and inside their node\'s pod CIDR; node CIDRs disjoint, inside the cluster CIDR',
  6: 'a pod reaching an outside host is seen as its node IP (masquerade)',
};

export interface Probe {
  id: number;
  rule: RuleId;
  /** Netns the client runs in. */
  clientNetns: string;
  clientLabel: string;
  /** The source address the server must see; undefined = any. */
  expectClient?: string;
  /** The client's own address, as NetworkPolicy judges it (before any masquerade). */
  source?: string;
  host: string;
  port: number;
  protocol: 'tcp' | 'udp';
  serverLabel: string;
  crossNode?: boolean;
  /** The address family probed: a dual-stack cluster proves rules 1-4 and 6 in each. */
  family?: 4 | 6;
}

export interface ProbeResult {
  id: number;
  ok: boolean;
  /** What the server saw as the client address (ip only). */
  client?: string;
  /** What the server called itself. */
  server?: string;
  error?: string;
  ms?: number;
}

export interface RuleResult {
  rule: RuleId;
  title: string;
  status: 'pass' | 'fail' | 'skip';
  /** Lines that show why: what was probed and what came back. */
  evidence: string[];
  failures: string[];
}

const podLabel = (p: CheckPod) => `${p.namespace}/${p.name}`;

interface FamilyView { family: 4 | 6; pick: (ips: string[]) => string | undefined; suffix: string; localhost: string }
/** IPv4 first, as before dual stack; IPv6 probes say so in their server label. */
const FAMILIES: FamilyView[] = [
  { family: 4, pick: (ips) => ips.find((ip) => !ip.includes(':')), suffix: '', localhost: '127.0.0.1' },
  { family: 6, pick: (ips) => ips.find((ip) => ip.includes(':')), suffix: ' over IPv6', localhost: '::1' },
];

/** Every probe the check will run; servers listen on `port` in every pod netns and on the external host. */
export function planProbes(inp: CheckInputs, port: number): Probe[] {
  const probes: Probe[] = [];
  const add = (p: Omit<Probe, 'id'>) => probes.push({ id: probes.length, ...p });
  const nodeOf = new Map(inp.nodes.map((n) => [n.name, n]));
  const nodeIPOf = (node: string | undefined, f: FamilyView) => (node === undefined ? undefined : f.family === 4 ? nodeOf.get(node)?.nodeIP : nodeOf.get(node)?.nodeIPv6);
  // A single-stack cluster plans exactly the IPv4 probes it always had; each further family repeats them.
  for (const f of FAMILIES) {
    const podsOnNet = inp.pods.filter((p) => !p.hostNetwork && f.pick(p.ips));
    if (podsOnNet.length === 0) continue;
    const at = (p: CheckPod) => f.pick(p.ips)!;
    for (const a of podsOnNet) {
      for (const b of podsOnNet) {
        if (a === b) continue;
        add({ rule: 1, clientNetns: a.netns, clientLabel: podLabel(a), expectClient: at(a), source: at(a), host: at(b), port, protocol: 'tcp',
          serverLabel: podLabel(b) + f.suffix, crossNode: a.node !== b.node, family: f.family });
      }
    }
    for (const n of inp.nodes) {
      for (const b of podsOnNet) {
        add({ rule: 2, clientNetns: n.netns, clientLabel: `node ${n.name}`, source: nodeIPOf(n.name, f), host: at(b), port, protocol: 'tcp',
          serverLabel: podLabel(b) + f.suffix, crossNode: n.name !== b.node, family: f.family });
      }
    }
    for (const h of inp.pods.filter((p) => p.hostNetwork)) {
      for (const b of podsOnNet) {
        add({ rule: 3, clientNetns: h.netns, clientLabel: `${podLabel(h)} (host network on ${h.node})`, expectClient: nodeIPOf(h.node, f),
          source: nodeIPOf(h.node, f), host: at(b), port, protocol: 'tcp', serverLabel: podLabel(b) + f.suffix, crossNode: h.node !== b.node, family: f.family });
      }
    }
    for (const p of podsOnNet.filter((x) => x.containers.length > 1)) {
      for (const c of p.containers) {
        for (const cp of c.ports) {
          add({ rule: 4, clientNetns: p.netns, clientLabel: `${podLabel(p)}`, host: f.localhost, port: cp.port, protocol: cp.protocol,
            serverLabel: `${podLabel(p)} container ${c.name}${f.suffix}`, family: f.family });
        }
      }
    }
    // Masquerade in a family needs the external host to have an address of it (the lab's has both in dual stack).
    const external = f.family === 4 ? inp.external?.ip : inp.external?.ip6;
    if (external) {
      for (const a of podsOnNet) {
        add({ rule: 6, clientNetns: a.netns, clientLabel: podLabel(a), expectClient: nodeIPOf(a.node, f), source: at(a),
          host: external, port, protocol: 'tcp', serverLabel: `external host ${external}`, family: f.family });
      }
    }
  }
  return probes;
}

/** Rule 5 needs no packets: the addresses themselves. */
export function checkAddresses(inp: CheckInputs): { evidence: string[]; failures: string[] } {
  const evidence: string[] = [];
  const failures: string[] = [];
  const cluster = inp.clusterCIDRs.map((c) => ipaddr.parseCIDR(c));
  const within = (addr: string, cidr: [ipaddr.IPv4 | ipaddr.IPv6, number]) => {
    const a = ipaddr.parse(addr);
    return a.kind() === cidr[0].kind() && a.match(cidr);
  };
  const nodeCidrs: Array<{ node: string; cidr: string }> = inp.nodes.flatMap((n) => n.podCIDRs.map((cidr) => ({ node: n.name, cidr })));
  for (const { node, cidr } of nodeCidrs) {
    const [net, bits] = ipaddr.parseCIDR(cidr);
    if (!cluster.some((c) => c[0].kind() === net.kind() && bits >= c[1] && net.match(c))) failures.push(`node ${node}: pod CIDR ${cidr} is outside the cluster CIDR ${inp.clusterCIDRs.join(', ')}`);
  }
  for (let i = 0; i < nodeCidrs.length; i++) {
    for (let j = i + 1; j < nodeCidrs.length; j++) {
      const a = ipaddr.parseCIDR(nodeCidrs[i].cidr), b = ipaddr.parseCIDR(nodeCidrs[j].cidr);
      if (a[0].kind() !== b[0].kind()) continue;
      if (a[0].match(b) || b[0].match(a)) failures.push(`nodes ${nodeCidrs[i].node} (${nodeCidrs[i].cidr}) and ${nodeCidrs[j].node} (${nodeCidrs[j].cidr}) overlap`);
    }
  }
  evidence.push(`node pod CIDRs: ${nodeCidrs.map((x) => `${x.node}=${x.cidr}`).join(', ') || 'none'}`);
  const seen = new Map<string, string>();
  const nodes = new Map(inp.nodes.map((n) => [n.name, n]));
  for (const p of inp.pods.filter((x) => !x.hostNetwork)) {
    if (p.ips.length === 0) { failures.push(`pod ${podLabel(p)} has no IP`); continue; }
    for (const ip of p.ips) {
      const other = seen.get(ip);
      if (other) failures.push(`pods ${other} and ${podLabel(p)} share IP ${ip}`);
      seen.set(ip, podLabel(p));
      const node = nodes.get(p.node);
      const fam = node?.podCIDRs.filter((c) => c.includes(':') === ip.includes(':')) ?? [];
      if (!fam.some((c) => within(ip, ipaddr.parseCIDR(c)))) failures.push(`pod ${podLabel(p)}: IP ${ip} is outside node ${p.node}'s pod CIDR ${fam.join(', ') || '(none)'}`);
    }
    // Dual stack: a pod gets an address from each of its node's pod CIDRs, or it is half there.
    for (const cidr of nodes.get(p.node)?.podCIDRs ?? []) {
      if (!p.ips.some((ip) => ip.includes(':') === cidr.includes(':'))) failures.push(`pod ${podLabel(p)} has no IPv${cidr.includes(':') ? 6 : 4} address, though node ${p.node} has pod CIDR ${cidr}`);
    }
  }
  evidence.push(`${seen.size} pod IPs, all distinct${failures.length ? '' : ' and inside their node\'s pod CIDR'}`);
  return { evidence, failures };
}

/** Judges each rule from its probes' results; `excluded`: per rule, pairs left out because NetworkPolicy denies them. */
export function judge(inp: CheckInputs, probes: Probe[], results: ProbeResult[], excluded: ReadonlyMap<RuleId, number> = new Map()): RuleResult[] {
  const byId = new Map(results.map((r) => [r.id, r]));
  const out: RuleResult[] = [];
  for (const rule of [1, 2, 3, 4, 5, 6] as PodRuleId[]) {
    const rr: RuleResult = { rule, title: RULE_TITLES[rule], status: 'pass', evidence: [], failures: [] };
    if (rule === 5) {
      const a = checkAddresses(inp);
      rr.evidence = a.evidence;
      rr.failures = a.failures;
    } else {
      const mine = probes.filter((p) => p.rule === rule);
      const left = excluded.get(rule) ?? 0;
      const leftOut = `${left} pair${left === 1 ? '' : 's'} left out: NetworkPolicy denies them (rule 11)`;
      if (mine.length === 0) {
        rr.status = 'skip';
        rr.evidence.push(left ? leftOut : rule === 3 ? 'no host-network pods' : rule === 4 ? 'no pod with several containers declaring ports' : rule === 6 ? 'no external host' : 'nothing to probe');
        out.push(rr);
        continue;
      }
      let okCount = 0;
      for (const p of mine) {
        const r = byId.get(p.id);
        const what = `${p.clientLabel} -> ${p.serverLabel} (${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}/${p.protocol}${p.crossNode === undefined ? '' : p.crossNode ? ', cross-node' : ', same node'})`;
        if (!r || !r.ok) { rr.failures.push(`${what}: ${r?.error ?? 'no result'}`); continue; }
        if (p.expectClient && r.client !== p.expectClient) {
          rr.failures.push(`${what}: server saw client ${r.client}, expected ${p.expectClient}${rule === 1 ? ' (NAT on the path)' : ''}`);
          continue;
        }
        okCount++;
        rr.evidence.push(`${what}: answered in ${r.ms ?? '?'} ms, server saw ${r.client}`);
      }
      rr.evidence.unshift(`${okCount}/${mine.length} probes passed${left ? `; ${leftOut}` : ''}`);
      if (rule === 6 && out[0]?.status === 'fail') rr.failures.push('rule 1 does not hold, so masquerade cannot be told apart from NAT between pods');
    }
    if (rr.failures.length) rr.status = 'fail';
    out.push(rr);
  }
  return out;
}
