// Runs the check's probes for real: a `flatnet serve --probes` in every pod namespace and on the external
// host, which also runs the probes whose client is its namespace (a probe worker runs them elsewhere;
// procs.ts), within pool.ts's bounds on starts and probes in flight; then judges the answers. Service
// probes (rules 7-10) go to the Services' own backends, not to these servers. A failed probe is tried
// again before it is judged; its time is the network's, from its connect.
import { availableParallelism } from 'node:os';
import { judge, planProbes, type CheckInputs, type Probe, type ProbeResult, type RuleResult, type UnreadyPod } from './model.js';
import { REFUSE_WITHIN_MS, judgeServices, planServiceProbes, type ServiceCheckInputs, type ServiceProbe } from './services.js';
import { defaultLimits, runPool, type PoolLimits } from './pool.js';
import { CheckServer, mapLimit, probeRunners } from './procs.js';
import { judgePolicy, planPolicyProbes, serviceProbesWithoutDenied, withoutDenied, type PolicyProbe } from './policy.js';
import type { StreamedProbe, WorkerResult, WorkerSettings } from '../workload/probe-worker.js';

export interface CheckOptions {
  /** How to start flatnet itself: [node, /path/flatnet.mjs]. */
  flatnet: string[];
  port?: number;
  /** Per attempt, from its connect. */
  timeoutMs?: number;
  /** Tries per probe before it is judged (default 3). */
  attempts?: number;
  limits?: Partial<PoolLimits>;
}

export interface CheckReport {
  rules: RuleResult[];
  probes: number;
  /** Probes that needed more than one attempt. */
  retried: number;
  /** Pods not Ready when the check began: reported, not probed on their own ports. */
  unready: UnreadyPod[];
  elapsedMs: number;
  pass: boolean;
}

/** Backoff before the 2nd and 3rd attempt: long enough for a starved server to be scheduled. */
const RETRY_BACKOFF_MS = [250, 1000];

type Target = Pick<Probe, 'id' | 'host' | 'port' | 'protocol'> & Partial<Pick<ServiceProbe, 'expectRefused'>> & Partial<Pick<PolicyProbe, 'timeoutMs' | 'attempts'>> & { clientNetns: string };

/** The service rules' view: a client pod per node, the nodes, and where each pod runs. */
function serviceView(inp: CheckInputs): ServiceCheckInputs {
  const onNet = inp.pods.filter((p) => !p.hostNetwork && p.ips.some((ip) => !ip.includes(':')))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const clientPods = onNet.map((p) => ({ label: `${p.namespace}/${p.name}`, node: p.node, netns: p.netns, ip: p.ips.find((ip) => !ip.includes(':'))! }));
  return {
    services: inp.services ?? [], clientPods, external: inp.external,
    nodes: inp.nodes.map((n) => ({ name: n.name, nodeIP: n.nodeIP, netns: n.netns })),
    podNetns: new Map(onNet.map((p) => [`${p.namespace}/${p.name}`, p.netns])),
  };
}

const wire = (p: Target, settings: WorkerSettings): StreamedProbe => ({
  id: p.id, host: p.host, port: p.port, protocol: p.protocol, ...settings,
  ...(p.timeoutMs ? { timeoutMs: p.timeoutMs } : {}), ...(p.attempts ? { attempts: p.attempts } : {}),
  ...(p.expectRefused ? { expect: 'refused' as const, withinMs: REFUSE_WITHIN_MS } : {}),
});

/** Rule 4 probes a pod's own servers: not while it is not Ready (the kubelet says its ports do not listen). */
function skipUnready(probes: Probe[], inp: CheckInputs): Probe[] {
  const unready = new Set(inp.pods.filter((p) => p.ready === false).map((p) => `${p.namespace}/${p.name}`));
  return probes.filter((p) => !(p.rule === 4 && unready.has(p.clientLabel)));
}

/** Rules 7-9 say which client-service pairs NetworkPolicy took from them (policy.ts). */
function noteServicesLeftOut(rules: RuleResult[], excluded: ReadonlyMap<number, number>): void {
  for (const [rule, n] of excluded) {
    const rr = rules.find((r) => r.rule === rule);
    if (!rr) continue;
    const note = `${n} client-service pair${n === 1 ? '' : 's'} left out: NetworkPolicy denies some of their backends (rule 11)`;
    if (rr.status === 'skip') rr.evidence = [note];
    else rr.evidence[0] = `${rr.evidence[0]}; ${note}`;
  }
}

function noteUnready(rules: RuleResult[], inp: CheckInputs): void {
  const rule4 = rules.find((r) => r.rule === 4);
  const skipped = inp.pods.filter((p) => p.ready === false && p.containers.length > 1);
  if (!rule4 || skipped.length === 0) return;
  const notes = skipped.map((p) => `not probed: ${p.namespace}/${p.name} is not Ready (${inp.unready?.find((u) => u.pod === `${p.namespace}/${p.name}`)?.reason ?? 'not Ready'})`);
  if (rule4.status === 'skip') rule4.evidence = notes;
  else rule4.evidence.splice(1, 0, ...notes); // after the count, where the summary shows it
}

export async function runCheck(inp: CheckInputs, opts: CheckOptions): Promise<CheckReport> {
  const t0 = Date.now();
  const port = opts.port ?? 19999;
  const limits = { ...defaultLimits(availableParallelism()), ...opts.limits };
  // Pairs NetworkPolicy denies are not rules 1-3 and 6's to judge: rule 11 probes a sample of both verdicts.
  const { probes, excluded } = withoutDenied(inp, skipUnready(planProbes(inp, port), inp));
  const services = serviceProbesWithoutDenied(inp, planServiceProbes(serviceView(inp), probes.reduce((m, p) => Math.max(m, p.id + 1), 0)));
  const serviceProbes = services.probes;
  const policy = planPolicyProbes(inp, port, serviceProbes.reduce((m, p) => Math.max(m, p.id + 1), probes.reduce((m, p) => Math.max(m, p.id + 1), 0)));
  const servers = new Map<string, CheckServer>();
  try {
    const targets = inp.pods.filter((p) => !p.hostNetwork && p.ips.length).map((p) => ({ netns: p.netns, name: `${p.namespace}/${p.name}` }));
    if (inp.external) targets.push({ netns: inp.external.netns, name: 'external' });
    // Servers start before any probe is timed: more at once, only bounded against a fork storm.
    const started = await mapLimit(targets, 4 * limits.starting, (t) => CheckServer.start(opts.flatnet, t.netns, t.name, port));
    for (const s of started) if (s.status === 'fulfilled') servers.set(s.value.netns, s.value);
    const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;

    const settings: WorkerSettings = { timeoutMs: opts.timeoutMs ?? 2000, attempts: opts.attempts ?? 3, backoffMs: RETRY_BACKOFF_MS };
    const runAll = (list: Target[]): Promise<WorkerResult[]> => {
      const byNetns = new Map<string, StreamedProbe[]>();
      for (const p of list) byNetns.set(p.clientNetns, [...(byNetns.get(p.clientNetns) ?? []), wire(p, settings)]);
      return runPool(byNetns, probeRunners(opts.flatnet, servers), limits);
    };
    // Refusals are timed (rule 10): they run on their own, after the crowd.
    const results: Array<ProbeResult & { attempts?: number }> = [
      ...await runAll([...probes, ...serviceProbes.filter((p) => !p.expectRefused), ...policy.probes]),
      ...await runAll(serviceProbes.filter((p) => p.expectRefused)),
    ];
    const rules = [...judge(inp, probes, results, excluded), ...judgeServices(serviceProbes, results, (inp.services ?? []).length > 0)];
    noteServicesLeftOut(rules, services.excluded);
    // Rule 11 is reported when the cluster has policies (without any, rules 1-3 and 6 already cover every pair).
    if (inp.policy?.policies.length) rules.push(judgePolicy(policy.probes, results, policy.candidates));
    noteUnready(rules, inp);
    return {
      rules, probes: probes.length + serviceProbes.length + policy.probes.length, retried: results.filter((r) => (r.attempts ?? 1) > 1).length,
      unready: inp.unready ?? [], elapsedMs: Date.now() - t0, pass: rules.every((r) => r.status !== 'fail'),
    };
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
}

export function formatReport(rep: CheckReport, verbose = false): string {
  const lines: string[] = [];
  for (const u of rep.unready) lines.push(`[WAIT] pod ${u.pod}${u.node ? ` on ${u.node}` : ''} is not Ready: ${u.reason}`);
  for (const r of rep.rules) {
    const mark = r.status === 'pass' ? 'PASS' : r.status === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`[${mark}] rule ${r.rule}: ${r.title}`);
    for (const f of r.failures) lines.push(`       x ${f}`);
    const ev = verbose ? r.evidence : r.evidence.slice(0, 3);
    for (const e of ev) lines.push(`       - ${e}`);
    if (!verbose && r.evidence.length > 3) lines.push(`       - ... ${r.evidence.length - 3} more (-v shows all)`);
  }
  lines.push(`${rep.pass ? 'PASS' : 'FAIL'}: ${rep.rules.filter((r) => r.status === 'pass').length} rules passed, `
    + `${rep.rules.filter((r) => r.status === 'fail').length} failed, ${rep.rules.filter((r) => r.status === 'skip').length} skipped; `
    + `${rep.probes} probes in ${(rep.elapsedMs / 1000).toFixed(1)} s${rep.retried ? ` (${rep.retried} retried)` : ''}`
    + `${rep.unready.length ? `; ${rep.unready.length} pod${rep.unready.length === 1 ? '' : 's'} not Ready` : ''}`);
  return lines.join('\n');
}
