// Runs the check's probes for real: a `flatnet serve` in every pod namespace and on the external host,
// one probe worker per client namespace (all of its probes in parallel), then judges the answers.
// Service probes (rules 7-10) go to the Services' own backends, not to these servers.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { judge, planProbes, type CheckInputs, type Probe, type ProbeResult, type RuleResult } from './model.js';
import { judgeServices, planServiceProbes, type ServiceCheckInputs } from './services.js';

export interface CheckOptions {
  /** How to start flatnet itself: [node, /path/flatnet.mjs]. */
  flatnet: string[];
  port?: number;
  timeoutMs?: number;
}

export interface CheckReport { rules: RuleResult[]; probes: number; elapsedMs: number; pass: boolean }

const inNetns = (netns: string, argv: string[]) => ['nsenter', `--net=/run/netns/${netns}`, ...argv];

/** Starts `flatnet serve` in a namespace and resolves once it listens (it prints one line then). */
function startServer(flatnet: string[], netns: string, name: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = inNetns(netns, [...flatnet, 'serve', '--port', `${port}/tcp`, '--name', name]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`serve in ${netns} exited (${code}): ${err.trim()}`)));
    child.once('error', reject);
  });
}

type Target = Pick<Probe, 'id' | 'host' | 'port' | 'protocol'>;

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

/** One worker per client namespace: targets as JSON on stdin, results as JSON on stdout. */
function runWorker(flatnet: string[], netns: string, probes: Target[], timeoutMs: number): Promise<ProbeResult[]> {
  return new Promise((resolve) => {
    const [cmd, ...args] = inNetns(netns, [...flatnet, 'probe-worker']);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    const failAll = (msg: string) => probes.map((p) => ({ id: p.id, ok: false, error: msg }));
    child.once('error', (e) => resolve(failAll(`probe worker: ${e.message}`)));
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(out) as ProbeResult[]);
      } catch {
        resolve(failAll(`probe worker in ${netns} failed (${code}): ${err.trim() || out.trim()}`));
      }
    });
    child.stdin!.end(JSON.stringify({
      timeoutMs,
      targets: probes.map((p) => ({ id: p.id, host: p.host, port: p.port, protocol: p.protocol })),
    }));
  });
}

export async function runCheck(inp: CheckInputs, opts: CheckOptions): Promise<CheckReport> {
  const t0 = Date.now();
  const port = opts.port ?? 19999;
  const probes = planProbes(inp, port);
  const serviceProbes = planServiceProbes(serviceView(inp), probes.length);
  const servers: ChildProcess[] = [];
  try {
    const starts = inp.pods.filter((p) => !p.hostNetwork && p.ips.length)
      .map((p) => startServer(opts.flatnet, p.netns, `${p.namespace}/${p.name}`, port));
    if (inp.external) starts.push(startServer(opts.flatnet, inp.external.netns, 'external', port));
    const started = await Promise.allSettled(starts);
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;

    const runAll = async (list: Array<Target & { clientNetns: string }>) => {
      const byNetns = new Map<string, Target[]>();
      for (const p of list) byNetns.set(p.clientNetns, [...(byNetns.get(p.clientNetns) ?? []), p]);
      return (await Promise.all([...byNetns].map(([ns, ps]) => runWorker(opts.flatnet, ns, ps, opts.timeoutMs ?? 2000)))).flat();
    };
    // Refusals are timed (rule 10): they run on their own, after the crowd, so queueing is not counted.
    const results = [
      ...await runAll([...probes, ...serviceProbes.filter((p) => !p.expectRefused)]),
      ...await runAll(serviceProbes.filter((p) => p.expectRefused)),
    ];
    const rules = [...judge(inp, probes, results), ...judgeServices(serviceProbes, results, (inp.services ?? []).length > 0)];
    return { rules, probes: probes.length + serviceProbes.length, elapsedMs: Date.now() - t0, pass: rules.every((r) => r.status !== 'fail') };
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      if (s.exitCode !== null || s.signalCode !== null) return resolve();
      s.once('exit', () => resolve());
      s.kill('SIGTERM');
    })));
  }
}

export function formatReport(rep: CheckReport, verbose = false): string {
  const lines: string[] = [];
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
    + `${rep.probes} probes in ${(rep.elapsedMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
