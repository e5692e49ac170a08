// What `flatnet check` proves of NetworkPolicy, pure: the evaluator (the oracle) says which pairs the
// policies allow and deny; rules 1-3 and 6 leave the denied ones out, and rule 11 probes a sample of
// both verdicts (every isolated pod in each verdict it has) with real packets: an allowed pair must
// answer, a denied one must time out (a silent drop), and a failure names the node that should enforce it.
import { evaluateIn, indexWorld, type Connection, type PolicyWorld, type Verdict } from '../policy/evaluate.js';
import type { CheckInputs, CheckPod, Probe, ProbeResult, RuleId, RuleResult } from './model.js';
import type { ServiceProbe } from './services.js';

export const POLICY_RULE = 11;
export const POLICY_RULE_TITLE = 'NetworkPolicy: allowed pairs connect, denied pairs are dropped';
/** At most this many rule-11 probes; the isolated pods' required ones come first. */
export const MAX_POLICY_PROBES = 200;
/** A denied pair is given this long to stay silent: one attempt, no retry (a drop never answers). */
export const DENIED_TIMEOUT_MS = 1000;

export type Evaluate = (world: PolicyWorld, conn: Connection) => Verdict;

/** One connection's verdict over the inputs' world, indexed once (tests may pass their own oracle). */
const oracle = (world: PolicyWorld, evaluate?: Evaluate) => {
  if (evaluate) return (c: Connection) => evaluate(world, c);
  const idx = indexWorld(world);
  return (c: Connection) => evaluateIn(idx, c);
};

export interface PolicyProbe extends Probe {
  rule: 11;
  allowed: boolean;
  /** Why, in the evaluator's words: the isolating policies and the allowing rule per direction. */
  why: string;
  /** Nodes whose tables decide this pair (the source's for egress, the destination's for ingress). */
  enforcers: string[];
  /** Per-probe worker settings: denied pairs get one short attempt. */
  timeoutMs?: number;
  attempts?: number;
}

const label = (p: CheckPod) => `${p.namespace}/${p.name}`;
const v4 = (p: CheckPod) => p.ips.find((ip) => !ip.includes(':'));
const proto = (p: 'tcp' | 'udp') => (p === 'tcp' ? 'TCP' : 'UDP');

/** Whether the cluster has policies for the check to judge. */
export const hasPolicies = (inp: CheckInputs): boolean => (inp.policy?.policies.length ?? 0) > 0;

/** Human text of a verdict: "egress: x/p rule 0; ingress isolated by y/deny, none allows". */
export function verdictText(v: Verdict): string {
  const dir = (name: string, d: Verdict['egress']) => {
    if (d.always) return `${name}: ${d.always}`;
    if (d.isolatedBy.length === 0) return `${name} not isolated`;
    if (d.allowedBy) return `${name} allowed by ${d.allowedBy.policy} rule ${d.allowedBy.rule}`;
    return `${name} isolated by ${d.isolatedBy.join(', ')}, none allows`;
  };
  return `${dir('egress', v.egress)}; ${dir('ingress', v.ingress)}`;
}

/** The nodes that drop a denied pair (or must let an allowed one through). */
function enforcersOf(v: Verdict, srcNode: string | undefined, dstNode: string | undefined): string[] {
  const out: string[] = [];
  const add = (n: string | undefined) => { if (n && !out.includes(n)) out.push(n); };
  if (v.allowed) { add(srcNode); add(dstNode); return out; }
  if (!v.egress.allowed) add(srcNode);
  if (!v.ingress.allowed) add(dstNode);
  return out;
}

/**
 * Rules 1-3 and 6 probe every pair on the check port: the pairs the policies deny are left out (rule 11
 * probes them). A node's own traffic to its pods is never judged (it leaves through output).
 */
export function withoutDenied(inp: CheckInputs, probes: Probe[], evaluate?: Evaluate): { probes: Probe[]; excluded: Map<RuleId, number> } {
  const excluded = new Map<RuleId, number>();
  if (!hasPolicies(inp)) return { probes, excluded };
  const verdict = oracle(inp.policy!, evaluate);
  const kept = probes.filter((p) => {
    if (![1, 2, 3, 6].includes(p.rule) || !p.source) return true;
    if ((p.rule === 2 || p.rule === 3) && p.crossNode === false) return true;
    if (verdict({ from: p.source, to: p.host, port: p.port, protocol: proto(p.protocol) }).allowed) return true;
    excluded.set(p.rule, (excluded.get(p.rule) ?? 0) + 1);
    return false;
  });
  return { probes: kept, excluded };
}

/**
 * Rules 7-9 expect a client to reach every backend of a Service: a (client, Service port) group whose
 * backends the policies deny to that client, judged after DNAT on the backend's own port, is left out.
 * A NodePort's backend may see the external host or, masqueraded from another node, a node address:
 * the group stays only when every such source is allowed.
 */
export function serviceProbesWithoutDenied(inp: CheckInputs, probes: ServiceProbe[], evaluate?: Evaluate): { probes: ServiceProbe[]; excluded: Map<RuleId, number> } {
  const excluded = new Map<RuleId, number>();
  if (!hasPolicies(inp)) return { probes, excluded };
  const verdict = oracle(inp.policy!, evaluate);
  const podIPs = new Map(inp.pods.map((p) => [label(p), v4(p)]));
  const nodeIPs = new Map(inp.nodes.map((n) => [n.name, n.nodeIP]));
  const denied = new Map<string, boolean>();
  const judgeGroup = (p: ServiceProbe): boolean => {
    const svc = (inp.services ?? []).find((s) => (p.rule === 8 ? s.type === 'NodePort' && s.ports.some((sp) => sp.nodePort === p.port)
      : s.clusterIP === p.host && s.ports.some((sp) => sp.port === p.port && sp.protocol === p.protocol)));
    const port = svc?.ports.find((sp) => sp.protocol === p.protocol && (p.rule === 8 ? sp.nodePort === p.port : sp.port === p.port));
    if (!svc || !port) return false;
    const sources = p.rule === 8 ? [inp.external?.ip, ...(svc.externalLocal ? [] : inp.nodes.map((n) => n.nodeIP))]
      : [p.clientLabel.startsWith('node ') ? nodeIPs.get(p.clientLabel.slice(5)) : podIPs.get(p.clientLabel)];
    const backends = (svc.endpoints.get(port.name) ?? []).filter((e) => (p.expectServers ?? []).includes(e.pod) && e.port !== undefined);
    return backends.some((e) => sources.some((from) => from !== undefined
      && !verdict({ from, to: e.ip, port: e.port!, protocol: proto(p.protocol) }).allowed));
  };
  const kept = probes.filter((p) => {
    if (p.expectRefused || !p.expectServers) return true;
    if (!denied.has(p.group)) {
      denied.set(p.group, judgeGroup(p));
      if (denied.get(p.group)) excluded.set(p.rule, (excluded.get(p.rule) ?? 0) + 1);
    }
    return !denied.get(p.group);
  });
  return { probes: kept, excluded };
}

/** A stable pseudo-random order (FNV-1a of a key): the same cluster samples the same pairs. */
const hash = (s: string) => { let h = 0x811c9dc5; for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0; return h; };

interface Candidate { src: CheckPod; dst: CheckPod; host: string; port: number; protocol: 'tcp' | 'udp'; v: Verdict; key: string }

/**
 * Rule 11's probes: every (source pod, destination pod, port) over the check port and the destination's
 * declared ports (a Ready pod's declared ports listen) where a policy isolates an end (pairs no policy
 * touches are rule 1's), judged by the evaluator; then a sample of at most
 * `max`: first, for every pod isolated in a direction, one pair of each verdict it has in that direction
 * (preferring pairs the other direction does not decide), then the rest in a stable shuffled order.
 */
export function planPolicyProbes(inp: CheckInputs, checkPort: number, firstId: number,
  opts: { max?: number; evaluate?: Evaluate } = {}): { probes: PolicyProbe[]; candidates: number } {
  if (!hasPolicies(inp)) return { probes: [], candidates: 0 };
  const verdict = oracle(inp.policy!, opts.evaluate);
  const max = opts.max ?? MAX_POLICY_PROBES;
  const onNet = inp.pods.filter((p) => !p.hostNetwork && v4(p)).sort((a, b) => label(a).localeCompare(label(b)));
  const all: Candidate[] = [];
  for (const dst of onNet) {
    const ports = new Map<string, { port: number; protocol: 'tcp' | 'udp' }>([[`${checkPort}/tcp`, { port: checkPort, protocol: 'tcp' }]]);
    if (dst.ready !== false) for (const c of dst.containers) for (const cp of c.ports) ports.set(`${cp.port}/${cp.protocol}`, cp);
    for (const src of onNet) {
      if (src === dst) continue; // a pod reaching itself stays on its loopback: no policy sees it
      for (const [key, t] of ports) {
        const v = verdict({ from: v4(src)!, to: v4(dst)!, port: t.port, protocol: proto(t.protocol) });
        if (v.egress.isolatedBy.length === 0 && v.ingress.isolatedBy.length === 0) continue;
        all.push({ src, dst, host: v4(dst)!, ...t, v, key: `${label(src)}>${label(dst)}:${key}` });
      }
    }
  }
  const chosen = new Set<Candidate>();
  // Each isolated pod, in each direction, in each verdict it has there.
  const needs = new Map<string, Candidate[]>();
  for (const c of all) {
    for (const [dir, pod, d, other] of [['egress', c.src, c.v.egress, c.v.ingress], ['ingress', c.dst, c.v.ingress, c.v.egress]] as const) {
      if (d.isolatedBy.length === 0) continue;
      const need = `${dir} ${label(pod)} ${d.allowed}`;
      const list = needs.get(need) ?? [];
      // Pairs whose other direction agrees test this direction alone; they go first.
      if (other.allowed) list.unshift(c); else list.push(c);
      needs.set(need, list);
    }
  }
  for (const [need, list] of [...needs].sort(([a], [b]) => a.localeCompare(b))) {
    if (list.some((c) => chosen.has(c))) continue;
    const clean = list.filter((c) => (need.startsWith('egress') ? c.v.ingress.allowed : c.v.egress.allowed));
    const from = clean.length ? clean : list;
    chosen.add(from[hash(need) % from.length]);
  }
  for (const c of [...all].sort((a, b) => hash(a.key) - hash(b.key) || a.key.localeCompare(b.key))) {
    if (chosen.size >= Math.max(max, 0)) break;
    chosen.add(c);
  }
  const probes = all.filter((c) => chosen.has(c)).map((c, i): PolicyProbe => ({
    id: firstId + i, rule: POLICY_RULE, clientNetns: c.src.netns, clientLabel: label(c.src), source: v4(c.src),
    host: c.host, port: c.port, protocol: c.protocol, serverLabel: label(c.dst), crossNode: c.src.node !== c.dst.node, family: 4,
    allowed: c.v.allowed, why: verdictText(c.v), enforcers: enforcersOf(c.v, c.src.node, c.dst.node),
    ...(c.v.allowed ? {} : { timeoutMs: DENIED_TIMEOUT_MS, attempts: 1 }),
  }));
  return { probes, candidates: all.length };
}

/** Rule 11's judgement: allowed pairs answered, denied pairs timed out (any answer or refusal got through). */
export function judgePolicy(probes: PolicyProbe[], results: ProbeResult[], candidates: number): RuleResult {
  const byId = new Map(results.map((r) => [r.id, r]));
  const rr: RuleResult = { rule: POLICY_RULE, title: POLICY_RULE_TITLE, status: 'pass', evidence: [], failures: [] };
  let allowedOk = 0, deniedOk = 0;
  const seen: { allowed: string[]; denied: string[] } = { allowed: [], denied: [] };
  for (const p of probes) {
    const r = byId.get(p.id);
    const what = `${p.clientLabel} -> ${p.serverLabel} (${p.host}:${p.port}/${p.protocol}${p.crossNode ? ', cross-node' : ', same node'})`;
    const nodes = p.enforcers.join(', ');
    if (p.allowed) {
      if (r?.ok) { allowedOk++; seen.allowed.push(`${what}: allowed, answered in ${r.ms ?? '?'} ms (${p.why})`); continue; }
      rr.failures.push(`${what}: allowed by policy but ${r?.error ?? 'no result'} (${p.why}; nodes ${nodes})`);
      continue;
    }
    if (r && !r.ok && /timeout/.test(r.error ?? '')) { deniedOk++; seen.denied.push(`${what}: denied, dropped (${p.why})`); continue; }
    const got = !r ? 'no result' : r.ok ? `answered by ${r.server ?? '?'} in ${r.ms ?? '?'} ms` : `${r.error} (not a silent drop)`;
    rr.failures.push(`${what}: denied by policy but ${got}: node ${nodes} does not enforce it (${p.why})`);
  }
  // One of each verdict first, so the short report shows both.
  for (let i = 0; i < Math.max(seen.allowed.length, seen.denied.length); i++) rr.evidence.push(...[seen.allowed[i], seen.denied[i]].filter((x): x is string => !!x));
  const allowed = probes.filter((p) => p.allowed).length;
  rr.evidence.unshift(`${allowedOk}/${allowed} allowed pairs connected, ${deniedOk}/${probes.length - allowed} denied pairs dropped`
    + `${candidates > probes.length ? ` (a sample of ${probes.length} of ${candidates} pairs a policy isolates, every isolated pod in each verdict it has)` : ''}`);
  if (rr.failures.length) rr.status = 'fail';
  return rr;
}
