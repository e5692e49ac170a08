// The policy bench's output: a table per size with both rulesets and their ratios, and the issue's
// targets, each printed as met or NOT met.
import type { FlatnetResult } from './flatnet.js';
import type { Latency } from './native.js';
import type { VerdictResult } from './verdicts.js';

export interface ReferenceResult {
  rules: number; chains: number; sets: number; elements: number;
  isolating: { ingress: number; egress: number };
  /** Rendering the restore inputs (not in loadMs). */
  renderMs: number;
  /** ipset restore + iptables-restore into an empty node (median of the samples), and each part. */
  loadMs: number; ipsetMs: number; iptablesMs: number; samples: number;
  /** Why it was not loaded (more sets than the kernel allows), when it was not. */
  skipped?: string;
}

export interface SizeResult {
  size: number;
  /** Policies in the world, probe policies included. */
  policies: number;
  flatnet?: FlatnetResult;
  reference: ReferenceResult;
  verdicts: VerdictResult;
  connect: { flatnet?: Latency; iptables?: Latency; base: Latency };
}

const f1 = (x: number) => x.toFixed(1);
const f0 = (x: number) => x.toFixed(0);
export const ratio = (a: number, b: number) => `${a / b < 0.1 ? Number((a / b).toPrecision(2)) : (a / b).toFixed(2)}×`;
const lat = (l?: Latency) => (l ? `${f0(l.p50)} / ${f0(l.p99)}` : '-');

export function printSize(r: SizeResult, baseLabel: string): void {
  const fn = r.flatnet, ref = r.reference;
  const row = (name: string, cells: string[]) => console.log(name.padEnd(12) + cells.map((c, i) => c.padStart([13, 13, 13, 13, 16][i])).join(''));
  console.log(`\n${r.size} policies (${r.policies} with the probe policies); reference: ${ref.rules} iptables rules, ${ref.chains} chains, ${ref.sets} ipsets, ${ref.elements} set elements; policies isolating a pod: ${f1(ref.isolating.ingress)} ingress, ${f1(ref.isolating.egress)} egress (mean)`);
  row('', ['full sync', '+1 policy', '+1 pod', 'label change', 'connect p50/p99']);
  row('', ['ms', 'ms (ops)', 'ms (ops)', 'ms (ops)', 'µs']);
  if (fn) {
    row('flatnet', [f1(fn.full.ms), `${f1(fn.policy.ms)} (${fn.policy.ops})`, `${f1(fn.pod.ms)} (${fn.pod.ops})`, `${f1(fn.label.ms)} (${fn.label.ops})`, lat(r.connect.flatnet)]);
    console.log(`  table: ${fn.table.chains} chains, ${fn.table.sets} sets and maps, ${fn.table.elements} elements, ${f0(fn.table.scriptKB)} KB of nft -f input; ` +
      `nft -f floors at this size: nothing changed ${f1(fn.noopMs)} ms, one map element added and deleted ${f1(fn.elementMs)} ms`);
    console.log(`  of which render: full ${f1(fn.full.renderMs)} ms, +1 policy ${f1(fn.policy.renderMs)}, +1 pod ${f1(fn.pod.renderMs)}, label ${f1(fn.label.renderMs)}; ` +
      `new pod's address in the table: ${fn.podInSets ? 'yes' : 'NO'}`);
  } else {
    row('flatnet', ['-', '-', '-', '-', '-']);
  }
  row('iptables', [ref.skipped ? 'not loaded' : f1(ref.loadMs), '-', '-', '-', lat(r.connect.iptables)]);
  if (ref.skipped) console.log(`  reference not loaded: ${ref.skipped}`);
  else console.log(`  of which ipset restore ${f1(ref.ipsetMs)} ms, iptables-restore ${f1(ref.iptablesMs)} ms (median of ${ref.samples}); rendering its input ${f1(ref.renderMs)} ms, not included`);
  row(baseLabel, ['', '', '', '', lat(r.connect.base)]);
  const v = r.verdicts;
  const judged = Object.entries(v.disagree).map(([name, bad]) => (bad.length ? `${name} got ${bad.length} wrong (${bad.join('; ')})` : `${name} agrees on all`));
  console.log(`verdicts against the evaluator, ${v.probes} pod pairs (${v.allowed} allowed, ${v.probes - v.allowed} denied): ${judged.join(', ')}`);
  const parts: string[] = [];
  if (fn && !ref.skipped) parts.push(`full sync ${ratio(fn.full.ms, ref.loadMs)}`);
  if (fn && r.connect.flatnet && r.connect.iptables) parts.push(`connect p50 ${ratio(r.connect.flatnet.p50, r.connect.iptables.p50)}, p99 ${ratio(r.connect.flatnet.p99, r.connect.iptables.p99)}`);
  if (parts.length) console.log(`flatnet/iptables: ${parts.join(', ')}`);
  const b = r.connect.base.p50;
  const over = (l: Latency) => `${l.p50 - b >= 0 ? '+' : '−'}${f1(Math.abs(l.p50 - b))} µs`;
  const cmp: string[] = [];
  if (r.connect.flatnet) cmp.push(`flatnet ${ratio(r.connect.flatnet.p50, b)} (${over(r.connect.flatnet)})`);
  if (r.connect.iptables) cmp.push(`iptables ${ratio(r.connect.iptables.p50, b)} (${over(r.connect.iptables)})`);
  if (cmp.length) console.log(`connect p50 against ${baseLabel} in the same rounds: ${cmp.join(', ')}`);
}

export interface TargetResult { name: string; value: string; met: boolean | undefined }

/** The targets at 1,000 policies (or the size nearest below it that ran, said so). */
export function targets(runs: SizeResult[]): TargetResult[] {
  const at = runs.find((r) => r.size === 1000) ?? [...runs].reverse().find((r) => r.size <= 1000) ?? runs[runs.length - 1];
  const zero = runs.find((r) => r.size === 0);
  const note = at.size === 1000 ? '' : ` (run at ${at.size}, not 1000)`;
  const fn = at.flatnet;
  const none = (name: string): TargetResult => ({ name, value: 'flatnet side not run', met: undefined });
  const out: TargetResult[] = [];
  const biggest = runs.reduce((m, r) => (r.size > m.size ? r : m), runs[0]);
  let name = `1,000 policies full sync ≤ 1 s${note}`;
  out.push(fn ? { name, value: `${f1(fn.full.ms)} ms`, met: fn.full.ms <= 1000 } : none(name));
  // Every change at every size counts: the target says "one change", not "at 1,000".
  name = `one change ≤ 50 ms (+1 policy, label change; every size up to ${biggest.size})`;
  const changes = runs.filter((r) => r.flatnet).map((r) => ({ size: r.size, ms: Math.max(r.flatnet!.policy.ms, r.flatnet!.label.ms) }));
  const worst = changes.reduce((m, c) => (c.ms > m.ms ? c : m), changes[0] ?? { size: 0, ms: 0 });
  out.push(changes.length ? { name, value: `worst ${f1(worst.ms)} ms (at ${worst.size})`, met: worst.ms <= 50 } : none(name));
  name = `a new pod's address in the sets ≤ 10 ms of agent time (every size up to ${biggest.size})`;
  const pods = runs.filter((r) => r.flatnet).map((r) => ({ size: r.size, ms: r.flatnet!.pod.ms, in: r.flatnet!.podInSets }));
  const slow = pods.reduce((m, c) => (c.ms > m.ms ? c : m), pods[0] ?? { size: 0, ms: 0, in: true });
  out.push(pods.length ? { name, value: `worst ${f1(slow.ms)} ms (at ${slow.size})${pods.every((p) => p.in) ? '' : ', address NOT found in the table at some size'}`,
    met: slow.ms <= 10 && pods.every((p) => p.in) } : none(name));
  const c = at.connect;
  name = `connect p50 at 1,000 ≤ 1.1× at 0 (flatnet with 0 policies, measured in the same rounds)${note}`;
  out.push(c.flatnet ? { name, value: `${f0(c.flatnet.p50)} µs vs ${f0(c.base.p50)} µs = ${ratio(c.flatnet.p50, c.base.p50)}`, met: c.flatnet.p50 <= 1.1 * c.base.p50 } : none(name));
  if (zero?.connect.flatnet && c.flatnet) {
    out.push({ name: `  (the same against the N=0 run's own flatnet figure)`, value: `${f0(c.flatnet.p50)} µs vs ${f0(zero.connect.flatnet.p50)} µs = ${ratio(c.flatnet.p50, zero.connect.flatnet.p50)}`,
      met: c.flatnet.p50 <= 1.1 * zero.connect.flatnet.p50 });
  }
  name = `connect p50 at 1,000 ≤ 0.5× the iptables ruleset at 1,000${note}`;
  out.push(c.flatnet && c.iptables ? { name, value: `${f0(c.flatnet.p50)} µs vs ${f0(c.iptables.p50)} µs = ${ratio(c.flatnet.p50, c.iptables.p50)}`, met: c.flatnet.p50 <= 0.5 * c.iptables.p50 }
    : none(name));
  return out;
}

export function printTargets(goals: TargetResult[]): void {
  console.log('targets:');
  for (const g of goals) console.log(`  ${g.name}: ${g.value} — ${g.met === undefined ? 'not measured' : g.met ? 'met' : 'NOT met'}`);
}
